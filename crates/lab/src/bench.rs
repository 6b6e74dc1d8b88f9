//! Benchmark placeholder (filled below).
