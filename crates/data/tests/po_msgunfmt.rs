//! Differential test of the .po parser: real catalogs decompiled by GNU `msgunfmt` must
//! parse to the same messages as the .mo files they came from. When `msgunfmt` (Debian
//! package `gettext`) or the catalogs are missing it is skipped, or fails under `CI=true`
//! (datm-testkit).

use std::process::Command;

use datm_data::gettext::{mo, po, read_catalog};

#[test]
fn po_parser_matches_mo_via_msgunfmt() {
    let Some(all) = datm_testkit::system_catalogs() else {
        return;
    };
    if !datm_testkit::program("msgunfmt", "gettext") {
        return;
    }
    let mut compared = 0;
    for path in all.iter().step_by(25) {
        let out = Command::new("msgunfmt").arg(path).output().unwrap();
        // msgunfmt prints nothing for a catalog holding only its header.
        if !out.status.success() || out.stdout.is_empty() {
            continue;
        }
        let out = out.stdout;
        let from_po = po::parse(&out, path).unwrap_or_else(|e| panic!("{e}"));
        let mut from_mo = read_catalog(path).unwrap();
        // msgunfmt writes UTF-8 text only if the catalog is UTF-8; both decode to the same text.
        let sort = |c: &mut Vec<datm_data::gettext::Message>| {
            c.sort_by(|a, b| (&a.context, &a.msgid).cmp(&(&b.context, &b.msgid)))
        };
        let mut po_msgs = from_po.messages;
        sort(&mut po_msgs);
        sort(&mut from_mo.messages);
        assert_eq!(po_msgs.len(), from_mo.messages.len(), "{}", path.display());
        for (a, b) in po_msgs.iter().zip(&from_mo.messages) {
            assert_eq!(a, b, "{}", path.display());
        }
        // And the .mo writer round-trips what the .po parser read.
        let rebuilt = mo::parse(&mo::encode(&po_msgs, false), path).unwrap();
        assert_eq!(rebuilt.messages.len(), po_msgs.len());
        compared += 1;
    }
    eprintln!("compared {compared} catalogs through msgunfmt");
}
