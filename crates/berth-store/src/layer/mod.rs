//! Layer tarballs: decompression, digest verification while streaming, and application onto a directory as an overlay layer.
