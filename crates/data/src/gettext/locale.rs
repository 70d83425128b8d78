//! Locale names (`ll[_CC][.charset][@modifier]`) to the paper's languages.
//!
//! Rules, in order:
//! - English locales (`en`, `en_GB`, `en@quot`, …) are the source side, not a target: ignored.
//! - A `@modifier` marks a script or orthography variant (`sr@latin`, `uz@cyrillic`,
//!   `ca@valencia`, `be@latin`): ignored, so `sr` is Serbian in Cyrillic as in the paper and
//!   `uz` Uzbek in Latin script.
//! - Traditional Chinese (`zh_TW`, `zh_HK`, `zh_MO`, `zh_Hant`) is ignored; `zh_CN`,
//!   `zh_Hans` and `zh_SG` are Chinese (`zh`).
//! - `az_IR` (South Azerbaijani, Arabic script) is ignored.
//! - Aliases: `nb` → `no` (Bokmål, what the paper's Norwegian is), `no` → `no`; `nn`
//!   (Nynorsk) is not mapped. Old codes `iw` → `he`, `in` → `id`.
//! - Otherwise the language subtag must be one of the 49 non-English codes; a territory is
//!   allowed (`de_DE`, `fr_CA`, `pt_BR`).
//!
//! Several locales can map to one language. Each match carries a priority (lower is
//! preferred): the bare or principal locale (`pt`, `de`, `nb`, `zh_CN`) is 0, the language's
//! "home" territory (`pt_PT`, `de_DE`, `nb_NO`, `zh_Hans`) is 1, other territories
//! (`pt_BR`, `de_CH`, `fr_CA`, `no`, `zh_SG`) are 2. Import takes a sentence's translation
//! from the most preferred locale that has one.

use datm_lang::Lang;

/// A locale mapped to a paper language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocaleMatch {
    /// The paper language.
    pub lang: Lang,
    /// Preference among locales of the same language: 0 is best.
    pub priority: u8,
}

/// Why a locale is not used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unmapped {
    /// An English locale (the source side).
    English,
    /// A script or orthography variant the paper does not use.
    Variant,
    /// A language outside the paper's 50.
    NotAPaperLanguage,
}

/// Territories that are a language's principal one (priority 1 instead of 2).
const HOME_TERRITORY: &[(&str, &str)] = &[
    ("pt", "PT"),
    ("de", "DE"),
    ("nb", "NO"),
    ("fr", "FR"),
    ("es", "ES"),
    ("it", "IT"),
    ("nl", "NL"),
    ("sv", "SE"),
    ("da", "DK"),
    ("ar", "SA"),
    ("fa", "IR"),
    ("ms", "MY"),
    ("sr", "RS"),
    ("ur", "PK"),
    ("ko", "KR"),
    ("ja", "JP"),
];

/// Maps a locale name to a paper language.
pub fn map_locale(name: &str) -> Result<LocaleMatch, Unmapped> {
    let (base, modifier) = match name.split_once('@') {
        Some((b, m)) => (b, Some(m)),
        None => (name, None),
    };
    let base = base.split('.').next().unwrap_or(base);
    let (lang, territory) = match base.split_once(['_', '-']) {
        Some((l, t)) => (l.to_ascii_lowercase(), Some(t)),
        None => (base.to_ascii_lowercase(), None),
    };
    if lang == "en" {
        return Err(Unmapped::English);
    }
    if modifier.is_some() {
        return Err(Unmapped::Variant);
    }
    if lang == "zh" {
        return chinese(territory);
    }
    if lang == "az" && territory.is_some_and(|t| t.eq_ignore_ascii_case("IR")) {
        return Err(Unmapped::Variant);
    }
    let (code, alias_penalty) = match lang.as_str() {
        "nb" => ("no", 0),
        "no" => ("no", 2),
        "iw" => ("he", 0),
        "in" => ("id", 0),
        other => (other, 0),
    };
    let lang_id = Lang::from_code(code).map_err(|_| Unmapped::NotAPaperLanguage)?;
    if lang_id.is_english() {
        return Err(Unmapped::English);
    }
    let territory_rank = match territory {
        None => 0,
        Some(t) if HOME_TERRITORY.contains(&(lang.as_str(), t)) => 1,
        Some(_) => 2,
    };
    Ok(LocaleMatch {
        lang: lang_id,
        priority: territory_rank.max(alias_penalty),
    })
}

/// Chinese locales: Simplified maps to `zh`, Traditional is a variant.
fn chinese(territory: Option<&str>) -> Result<LocaleMatch, Unmapped> {
    let priority = match territory.map(str::to_ascii_uppercase).as_deref() {
        Some("CN") => 0,
        Some("HANS") => 1,
        Some("SG") | None => 2,
        Some(_) => return Err(Unmapped::Variant),
    };
    Ok(LocaleMatch {
        lang: Lang::from_code("zh").expect("zh is a paper language"),
        priority,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str) -> Result<(String, u8), Unmapped> {
        map_locale(name).map(|m| (m.lang.code().to_string(), m.priority))
    }

    #[test]
    fn paper_codes() {
        assert_eq!(m("nb"), Ok(("no".into(), 0)));
        assert_eq!(m("nb_NO"), Ok(("no".into(), 1)));
        assert_eq!(m("no"), Ok(("no".into(), 2)));
        assert_eq!(m("nn"), Err(Unmapped::NotAPaperLanguage));
        assert_eq!(m("zh_CN"), Ok(("zh".into(), 0)));
        assert_eq!(m("zh_Hans"), Ok(("zh".into(), 1)));
        assert_eq!(m("zh_TW"), Err(Unmapped::Variant));
        assert_eq!(m("zh_Hant"), Err(Unmapped::Variant));
        assert_eq!(m("pt"), Ok(("pt".into(), 0)));
        assert_eq!(m("pt_PT"), Ok(("pt".into(), 1)));
        assert_eq!(m("pt_BR"), Ok(("pt".into(), 2)));
        assert_eq!(m("sr"), Ok(("sr".into(), 0)));
        assert_eq!(m("sr@latin"), Err(Unmapped::Variant));
        assert_eq!(m("sr@Latn"), Err(Unmapped::Variant));
        assert_eq!(m("uz"), Ok(("uz".into(), 0)));
        assert_eq!(m("uz@cyrillic"), Err(Unmapped::Variant));
        assert_eq!(m("de_DE.UTF-8"), Ok(("de".into(), 1)));
        assert_eq!(m("de_CH"), Ok(("de".into(), 2)));
        assert_eq!(m("ms"), Ok(("ms".into(), 0)));
        assert_eq!(m("fa"), Ok(("fa".into(), 0)));
        assert_eq!(m("az_IR"), Err(Unmapped::Variant));
        assert_eq!(m("iw"), Ok(("he".into(), 0)));
        assert_eq!(m("en_GB"), Err(Unmapped::English));
        assert_eq!(m("en@quot"), Err(Unmapped::English));
        assert_eq!(m("ca@valencia"), Err(Unmapped::Variant));
        assert_eq!(m("eo"), Err(Unmapped::NotAPaperLanguage));
        assert_eq!(m("locale.alias"), Err(Unmapped::NotAPaperLanguage));
    }
}
