//! The output formats: Markdown, LaTeX and HTML from the document blocks, CSV from the
//! report's data.

mod csv;
mod html;
mod latex;
mod markdown;

pub(crate) use csv::csv;
pub(crate) use html::html;
pub(crate) use latex::latex;
pub(crate) use markdown::markdown;
