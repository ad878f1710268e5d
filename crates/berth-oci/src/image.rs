//! Image configs, manifests, indexes and descriptors.
