//! Per-layer progress bars for `berth pull` and `berth push` on a terminal.
//!
//! The daemon sends Docker's JSON progress stream (`status`, `id`, `progressDetail`);
//! the docker CLI draws one line per layer, rewritten in place. We do the same with
//! indicatif: one bar per `id`, created in the order layers first appear (so lines do
//! not jump), its message the layer's latest status, its length and position from
//! `progressDetail`. Messages without an `id` ("Pulling from …", "Digest: …") print
//! above the bars. Off a terminal the caller uses [`crate::jsonmessage::display_stream`]
//! instead, which prints plain lines as docker does to a pipe.
//!
//! The state (which bar, what length, position and message) is kept apart from drawing
//! so that it is unit-tested with a hidden draw target.

use std::collections::HashMap;

use futures_util::{Stream, StreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;

use crate::jsonmessage::{JsonStreamDecoder, display};

/// A layer line while it has a byte count: id, status, bar, bytes done of total.
const BAR_TEMPLATE: &str = "{prefix}: {msg:<20} [{bar:40}] {bytes}/{total_bytes}";
/// A layer line without a byte count (Waiting, Pull complete, Layer already exists…).
const STATUS_TEMPLATE: &str = "{prefix}: {msg}";

/// The bars of one pull or push.
pub(crate) struct LayerBars {
    multi: MultiProgress,
    bars: HashMap<String, ProgressBar>,
}

impl LayerBars {
    /// Bars drawn to stdout (the caller has checked it is a terminal).
    pub(crate) fn stdout() -> Self {
        Self::with_target(ProgressDrawTarget::stdout())
    }

    fn with_target(target: ProgressDrawTarget) -> Self {
        LayerBars {
            multi: MultiProgress::with_draw_target(target),
            bars: HashMap::new(),
        }
    }

    /// Applies one message of the stream.
    ///
    /// # Errors
    /// The stream's error message ([`crate::jsonmessage::StreamError`]), or a failure
    /// to print a line.
    pub(crate) fn handle(&mut self, msg: &Value) -> anyhow::Result<()> {
        let text = |k: &str| msg.get(k).and_then(Value::as_str).unwrap_or("");
        let id = text("id");
        if id.is_empty() {
            // Errors, aux messages and plain lines, exactly as off a terminal.
            if let Some(line) = display(msg)? {
                self.multi.println(line.trim_end_matches('\n'))?;
            }
            return Ok(());
        }
        if msg.get("errorDetail").is_some_and(|d| !d.is_null())
            || msg
                .get("error")
                .and_then(Value::as_str)
                .is_some_and(|e| !e.is_empty())
        {
            display(msg)?;
        }
        let detail = msg.get("progressDetail");
        let num = |k: &str| {
            detail
                .and_then(|d| d.get(k))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        let (current, total) = (num("current"), num("total"));
        let bar = self.bar(id);
        bar.set_message(text("status").to_string());
        if total > 0 {
            if bar.length() != Some(total) {
                bar.set_length(total);
                bar.set_style(style(BAR_TEMPLATE));
            }
            bar.set_position(current.min(total));
        } else if current == 0 && bar.length().is_some() {
            // A status that carries no count (Verifying Checksum, Pull complete) ends
            // the byte bar of the previous phase.
            bar.unset_length();
            bar.set_style(style(STATUS_TEMPLATE));
        }
        Ok(())
    }

    /// The bar for `id`, added below the others the first time it is seen.
    fn bar(&mut self, id: &str) -> &ProgressBar {
        self.bars.entry(id.to_string()).or_insert_with(|| {
            let bar = self.multi.add(ProgressBar::no_length());
            bar.set_style(style(STATUS_TEMPLATE));
            bar.set_prefix(id.to_string());
            bar
        })
    }

    /// Leaves every bar drawn with its last status.
    pub(crate) fn finish(&self) {
        for bar in self.bars.values() {
            bar.abandon();
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .expect("the bar templates are valid")
        .progress_chars("=> ")
}

/// Draws a message stream as bars until it ends or reports an error.
///
/// # Errors
/// The daemon's error message, or a broken/malformed stream.
pub(crate) async fn draw_stream<S>(body: S) -> anyhow::Result<()>
where
    S: Stream<Item = Result<bytes::Bytes, std::io::Error>>,
{
    let mut bars = LayerBars::stdout();
    let mut decoder = JsonStreamDecoder::default();
    let mut body = std::pin::pin!(body);
    let result = async {
        while let Some(chunk) = body.next().await {
            for msg in decoder.push(&chunk?)? {
                bars.handle(&msg)?;
            }
        }
        if decoder.has_partial() {
            anyhow::bail!("unexpected EOF");
        }
        Ok(())
    }
    .await;
    bars.finish();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hidden() -> LayerBars {
        LayerBars::with_target(ProgressDrawTarget::hidden())
    }

    #[test]
    fn each_layer_gets_one_bar_that_follows_its_bytes() {
        let mut b = hidden();
        b.handle(&json!({"status": "Pulling fs layer", "id": "aaa"}))
            .unwrap();
        b.handle(&json!({"status": "Pulling fs layer", "id": "bbb"}))
            .unwrap();
        b.handle(&json!({"status": "Downloading", "id": "aaa",
            "progressDetail": {"current": 40, "total": 100}}))
            .unwrap();
        assert_eq!(b.bars.len(), 2);
        let a = &b.bars["aaa"];
        assert_eq!((a.position(), a.length()), (40, Some(100)));
        assert_eq!(a.message(), "Downloading");
        assert_eq!(b.bars["bbb"].message(), "Pulling fs layer");
        assert_eq!(b.bars["bbb"].length(), None);
    }

    #[test]
    fn a_status_without_bytes_ends_the_byte_bar() {
        let mut b = hidden();
        b.handle(&json!({"status": "Downloading", "id": "aaa",
            "progressDetail": {"current": 100, "total": 100}}))
            .unwrap();
        b.handle(&json!({"status": "Pull complete", "id": "aaa", "progressDetail": {}}))
            .unwrap();
        let a = &b.bars["aaa"];
        assert_eq!(a.message(), "Pull complete");
        assert_eq!(a.length(), None);
    }

    #[test]
    fn positions_never_pass_the_total() {
        let mut b = hidden();
        b.handle(&json!({"status": "Pushing", "id": "aaa",
            "progressDetail": {"current": 150, "total": 100}}))
            .unwrap();
        assert_eq!(b.bars["aaa"].position(), 100);
    }

    #[test]
    fn lines_without_an_id_make_no_bar_and_errors_end_the_stream() {
        let mut b = hidden();
        b.handle(&json!({"status": "Digest: sha256:abc"})).unwrap();
        assert!(b.bars.is_empty());
        let e = b
            .handle(&json!({"errorDetail": {"message": "denied"}, "error": "denied"}))
            .unwrap_err();
        assert_eq!(e.to_string(), "denied");
        let e = b
            .handle(&json!({"id": "aaa", "error": "blob unknown"}))
            .unwrap_err();
        assert_eq!(e.to_string(), "blob unknown");
    }
}
