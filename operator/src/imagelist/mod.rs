//! The HEPiX image list model and parser (to be written).
