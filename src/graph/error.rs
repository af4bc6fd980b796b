//! Why a graph could not be drawn: the one error type of the graph module.

/// Why a graph could not be drawn.
#[derive(Debug)]
pub enum GraphError {
    /// The request asks for value axes that cannot be drawn (glyph.py's `GraphError`: a
    /// `yMin` not below `yMax`, a log axis over values ≤ 0, a step that is not positive). The
    /// render API answers 400 (graphite-web fails with a 500).
    Axis(String),
    /// The image could not be allocated or encoded.
    Drawing(String),
}

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GraphError::Axis(m) | GraphError::Drawing(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for GraphError {}

/// Wraps a PNG encoder error.
pub(crate) fn err<E: std::fmt::Debug>(e: E) -> GraphError {
    GraphError::Drawing(format!("drawing failed: {e:?}"))
}
