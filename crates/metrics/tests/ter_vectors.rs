//! TER test vectors: sacrebleu's `test_ter.py` and `test_tokenizer_ter.py`, and the
//! acceptance vectors of `shared/notes/metrics.md` §1.8 (all from sacrebleu 2.6.0).

use datm_metrics::ter::{Ter, TerOptions, TercomTokenizer};
use datm_metrics::{corpus_score, Metric, NRefs, Signature, SIGNATURE_VERSION};

fn ter() -> Ter {
    Ter::new(TerOptions::default())
}

fn corpus_ter(hyps: &[&str], refs: &[&[&str]]) -> f64 {
    let refs: Vec<Vec<&str>> = (0..hyps.len())
        .map(|i| refs.iter().map(|r| r[i]).collect())
        .collect();
    corpus_score(&ter(), hyps, &refs).unwrap().score
}

#[test]
fn sacrebleu_test_ter_cases() {
    assert_eq!(
        corpus_ter(&["aaaa bbbb cccc dddd"], &[&["aaaa bbbb cccc dddd"]]),
        0.0
    );
    assert_eq!(
        corpus_ter(&["dddd eeee ffff"], &[&["aaaa bbbb cccc"]]),
        100.0
    );
    assert_eq!(corpus_ter(&[""], &[&["a"]]), 100.0);
    assert_eq!(
        corpus_ter(&["d e f g h a b c"], &[&["a b c d e f g h"]]),
        12.5
    );
}

#[test]
fn sacrebleu_test_ter_wmt_example() {
    let hyps = [
        "wählen Sie \" Bild neu berechnen , \" um beim Ändern der Bildgröße Pixel hinzuzufügen oder zu entfernen , damit das Bild ungefähr dieselbe Größe aufweist wie die andere Größe .",
        "wenn Sie alle Aufgaben im aktuellen Dokument aktualisieren möchten , wählen Sie im Menü des Aufgabenbedienfelds die Option \" Alle Aufgaben aktualisieren . \"",
        "klicken Sie auf der Registerkarte \" Optionen \" auf die Schaltfläche \" Benutzerdefiniert \" und geben Sie Werte für \" Fehlerkorrektur-Level \" und \" Y / X-Verhältnis \" ein .",
        "Sie können beispielsweise ein Dokument erstellen , das ein Auto über die Bühne enthält .",
        "wählen Sie im Dialogfeld \" Neu aus Vorlage \" eine Vorlage aus und klicken Sie auf \" Neu . \"",
    ];
    let refs = [
        "wählen Sie \" Bild neu berechnen , \" um beim Ändern der Bildgröße Pixel hinzuzufügen oder zu entfernen , damit die Darstellung des Bildes in einer anderen Größe beibehalten wird .",
        "wenn Sie alle Aufgaben im aktuellen Dokument aktualisieren möchten , wählen Sie im Menü des Aufgabenbedienfelds die Option \" Alle Aufgaben aktualisieren . \"",
        "klicken Sie auf der Registerkarte \" Optionen \" auf die Schaltfläche \" Benutzerdefiniert \" und geben Sie für \" Fehlerkorrektur-Level \" und \" Y / X-Verhältnis \" niedrigere Werte ein .",
        "Sie können beispielsweise ein Dokument erstellen , das ein Auto enthalt , das sich über die Bühne bewegt .",
        "wählen Sie im Dialogfeld \" Neu aus Vorlage \" eine Vorlage aus und klicken Sie auf \" Neu . \"",
    ];
    let m = ter();
    let stats: Vec<_> = hyps
        .iter()
        .zip(refs)
        .map(|(h, r)| m.segment_stats(h, &[r]).unwrap())
        .collect();
    let sum = datm_metrics::sum_stats(&stats);
    assert_eq!(sum, vec![17.0, 125.0]);
    assert_eq!(m.compute(&sum).score, 13.600000000000001);
}

const H: [&str; 3] = [
    "The dog bit the man.",
    "It wasn't surprising.",
    "The man had just bitten him.",
];
const R1: [&str; 3] = [
    "The dog bit the man.",
    "It was not unexpected.",
    "The man bit him first.",
];
const R2: [&str; 3] = [
    "The dog had bit the man.",
    "No one was surprised.",
    "The man had bitten the dog.",
];

#[test]
fn readme_corpus() {
    assert_eq!(corpus_ter(&H, &[&R1, &R2]), 40.0);
    assert_eq!(corpus_ter(&H, &[&R1]), 50.0);
}

#[test]
fn zero_reference_rules() {
    assert_eq!(corpus_ter(&["a"], &[&[""]]), 100.0);
    assert_eq!(corpus_ter(&[""], &[&[""]]), 0.0);
    assert_eq!(ter().compute(&[0.0, 0.0]).score, 0.0);
    assert_eq!(ter().compute(&[3.0, 0.0]).score, 100.0);
}

#[test]
fn signature_fields() {
    let v = SIGNATURE_VERSION;
    let sig = Signature::new(&ter(), NRefs::Fixed(1));
    assert_eq!(
        sig.format(false),
        format!("nrefs:1|case:lc|tok:tercom|norm:no|punct:yes|asian:no|version:{v}")
    );
    let all = Ter::new(TerOptions {
        normalized: true,
        no_punct: true,
        asian_support: true,
        case_sensitive: true,
    });
    let sig = Signature::new(&all, NRefs::Fixed(2));
    assert_eq!(
        sig.format(false),
        format!("nrefs:2|case:mixed|tok:tercom|norm:yes|punct:no|asian:yes|version:{v}")
    );
    assert_eq!(
        sig.format(true),
        format!("#:2|c:mixed|t:tercom|nr:yes|pn:no|as:yes|v:{v}")
    );
    assert!(all.lower_is_better());
    assert_eq!(all.name(), "TER");
}

fn tok(opts: TerOptions, s: &str) -> String {
    TercomTokenizer::new(opts).tokenize(s)
}

#[test]
fn sacrebleu_tokenizer_cases() {
    let default = TerOptions::default();
    for (input, expected) in [
        ("a b c d", "a b c d"),
        ("", ""),
        ("a b c d.", "a b c d."),
        ("A B C D.", "a b c d."),
    ] {
        assert_eq!(tok(default, input), expected);
    }
    let no_punct = TerOptions {
        no_punct: true,
        ..default
    };
    assert_eq!(tok(no_punct, "a b c d."), "a b c d");
    assert_eq!(tok(no_punct, "A ; B ) C : D."), "a b c d");
    let norm = TerOptions {
        normalized: true,
        ..default
    };
    assert_eq!(tok(norm, "a b (c) d."), "a b ( c ) d .");
    assert_eq!(tok(norm, "Jim's car."), "jim 's car .");
    assert_eq!(tok(norm, "4.2"), "4.2");
    let asian = TerOptions {
        normalized: true,
        asian_support: true,
        ..default
    };
    assert_eq!(tok(asian, "美众院公布对特"), "美 众 院 公 布 对 特");
    assert_eq!(tok(asian, "りの拳銃を持"), "りの 拳 銃 を 持");
}

#[test]
fn tokenizer_details() {
    let norm = TerOptions {
        normalized: true,
        ..TerOptions::default()
    };
    assert_eq!(
        tok(norm, "a&amp;b &quot;x&quot;\nline-\n-end"),
        "a & b \" x \" line-end"
    );
    assert_eq!(tok(norm, "3-4 a-b 1,000.5 x,y"), "3 - 4 a-b 1,000.5 x , y");
    let cased = TerOptions {
        case_sensitive: true,
        ..norm
    };
    assert_eq!(tok(cased, "Jim's Car"), "Jim 's Car");
    let asian_punct = TerOptions {
        no_punct: true,
        asian_support: true,
        ..TerOptions::default()
    };
    assert_eq!(tok(asian_punct, "你好。世界！(x)"), "你好世界x");
}
