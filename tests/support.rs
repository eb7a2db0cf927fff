//! Helpers shared by the integration suite.
