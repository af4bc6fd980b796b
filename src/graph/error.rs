//! Why a graph could not be drawn: the one error type of the graph module.

/// Why a graph could not be drawn (an image too large to allocate, an axis graphite-web rejects, or the PNG encoder failing).
#[derive(Debug)]
pub struct GraphError(pub String);

impl std::fmt::Display for GraphError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for GraphError {}

/// Wraps a PNG encoder error.
pub(crate) fn err<E: std::fmt::Debug>(e: E) -> GraphError {
    GraphError(format!("drawing failed: {e:?}"))
}
