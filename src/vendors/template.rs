//! The templates a vendor ships: where each lives, its file format and its character set.
//!
//! Only descriptions and the embedded text: compiling and rendering belong to the renderer
//! (the one owner of Tera). Knows nothing of requests.

use std::fmt;
use std::hash::{Hash, Hasher};

/// How values must be escaped in a file.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Format {
    /// `key = value` lines: a value may hold no line break.
    KeyValue,
    /// XML: markup characters escaped.
    Xml,
}

/// The character set a file is sent in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Charset {
    /// UTF-8.
    Utf8,
    /// ISO-8859-1: every character must be one of its 256, or the render fails.
    Latin1,
}

/// One shipped template.
#[derive(Debug)]
pub struct TemplateSpec {
    /// Path under the templates directory (`gigaset/n510.xml.tera`); also its name.
    pub path: &'static str,
    /// The shipped text, embedded in the binary.
    pub embedded: &'static str,
    /// Escaping.
    pub format: Format,
    /// Character set of the rendered bytes.
    pub charset: Charset,
    /// The Content-Type sent with it.
    pub content_type: &'static str,
}

/// A shipped template, by reference: cheap to copy, compared and hashed by identity (each
/// template is one `static`; the render cache hashes this on every fetch).
#[derive(Clone, Copy)]
pub struct Template(pub &'static TemplateSpec);

impl Template {
    /// Path under the templates directory.
    pub fn path(self) -> &'static str {
        self.0.path
    }

    /// The description.
    pub fn spec(self) -> &'static TemplateSpec {
        self.0
    }

    /// The Content-Type sent with the rendered file.
    pub fn content_type(self) -> &'static str {
        self.0.content_type
    }
}

impl PartialEq for Template {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self.0, other.0)
    }
}

impl Eq for Template {}

impl Hash for Template {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(self.0, state);
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({})", self.0.path)
    }
}

/// Content-Type of key=value files.
pub const TEXT_PLAIN: &str = "text/plain; charset=utf-8";
/// Content-Type of UTF-8 XML files.
pub const XML_UTF8: &str = "text/xml; charset=utf-8";
/// Content-Type of ISO-8859-1 XML files.
pub const XML_LATIN1: &str = "text/xml; charset=iso-8859-1";
