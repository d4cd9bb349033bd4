//! ticklake operator (in progress).
