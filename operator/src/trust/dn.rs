//! OpenSSL one-line DN strings (to be written).
