//! Reports: load worker results, analyse them, and write every output format into one directory.

pub mod charts;
pub mod csv;
pub mod html;
pub mod input;
pub mod markdown;
pub mod model;
pub mod plan;
pub mod table;
pub mod terminal;
pub mod trace;
pub mod write;
