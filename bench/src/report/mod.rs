//! Reports: turn loaded and analysed worker results into every output format, in one directory.

pub mod charts;
pub mod csv;
pub mod headline;
pub mod html;
pub mod markdown;
pub mod model;
pub mod plan;
pub mod sections;
pub mod table;
pub mod terminal;
pub mod trace;
pub mod write;
