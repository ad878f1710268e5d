//! Image references, normalized as Docker does.
