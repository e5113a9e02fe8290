//! Update decisions (to be written).
