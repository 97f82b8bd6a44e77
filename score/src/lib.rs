//! `isolake-score`: not implemented yet (see the project's open issues).
