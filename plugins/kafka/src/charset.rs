//! Header value encoding in the charsets TBMQ's UI offers for `kafkaHeadersCharset`, with
//! Java's `String.getBytes(charset)` results: unmappable characters become `?`, and `UTF-16`
//! writes a big-endian byte order mark before big-endian code units (nothing for an empty string).
//!
//! Other Java charsets (windows-1252, Shift_JIS, ...) are not supported and fail validation.

/// A supported header charset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Charset {
    /// `UTF-8` (the default).
    Utf8,
    /// `US-ASCII`: characters above U+007F become `?`.
    UsAscii,
    /// `ISO-8859-1`: characters above U+00FF become `?`.
    Iso8859_1,
    /// `UTF-16`: byte order mark `FE FF`, then big-endian.
    Utf16,
    /// `UTF-16BE`: big-endian, no byte order mark.
    Utf16Be,
    /// `UTF-16LE`: little-endian, no byte order mark.
    Utf16Le,
}

/// The canonical names, as listed in validation messages.
pub const SUPPORTED: &str = "UTF-8, US-ASCII, ISO-8859-1, UTF-16, UTF-16BE, UTF-16LE";

impl Charset {
    /// Looks up a charset by its Java name or one of Java's common aliases, ignoring case.
    pub fn from_name(name: &str) -> Option<Charset> {
        let charset = match name.trim().to_ascii_uppercase().as_str() {
            "UTF-8" | "UTF8" => Charset::Utf8,
            "US-ASCII" | "ASCII" | "US_ASCII" | "ISO646-US" => Charset::UsAscii,
            "ISO-8859-1" | "ISO8859-1" | "ISO8859_1" | "ISO_8859_1" | "LATIN1" | "L1" => Charset::Iso8859_1,
            "UTF-16" | "UTF16" | "UTF_16" => Charset::Utf16,
            "UTF-16BE" | "UTF_16BE" | "X-UTF-16BE" => Charset::Utf16Be,
            "UTF-16LE" | "UTF_16LE" | "X-UTF-16LE" => Charset::Utf16Le,
            _ => return None,
        };
        Some(charset)
    }

    /// Encodes `text` as Java's `text.getBytes(charset)` does.
    pub fn encode(self, text: &str) -> Vec<u8> {
        match self {
            Charset::Utf8 => text.as_bytes().to_vec(),
            Charset::UsAscii => text.chars().map(|c| if c.is_ascii() { c as u8 } else { b'?' }).collect(),
            Charset::Iso8859_1 => text.chars().map(|c| u8::try_from(u32::from(c)).unwrap_or(b'?')).collect(),
            Charset::Utf16 if text.is_empty() => Vec::new(),
            Charset::Utf16 => {
                let mut out = vec![0xFE, 0xFF];
                out.extend(text.encode_utf16().flat_map(u16::to_be_bytes));
                out
            }
            Charset::Utf16Be => text.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            Charset::Utf16Le => text.encode_utf16().flat_map(u16::to_le_bytes).collect(),
        }
    }
}
