//! IGTF namespace policies (to be written).
