//! The log output of `notarius serve`, set up once its configuration is loaded: lines for
//! people (`log_format = "text"`) or one JSON object per event for log collectors
//! (`"json"`), with the fields of the span the event happened in: the request span of
//! `http` carries the request id, method and path.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber, writing to stderr (stdout is for what commands print);
/// colours only on a terminal, and never with `NO_COLOR` set.
pub fn init(filter: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(filter)?;
    let colours = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    tracing::subscriber::set_global_default(subscriber(filter, format, colours, std::io::stderr))?;
    Ok(())
}

/// The subscriber `init` installs, writing to `writer`.
pub fn subscriber<W>(
    filter: EnvFilter,
    format: LogFormat,
    colours: bool,
    writer: W,
) -> Box<dyn Subscriber + Send + Sync>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(colours).with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        // The event's fields at the top level, and the current span's fields (the request's
        // id, method, path, and what handlers record on it) under "span".
        LogFormat::Json => {
            Box::new(builder.json().flatten_event(true).with_current_span(true).with_span_list(false).finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(format: LogFormat) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = subscriber(EnvFilter::new("info"), format, false, move || writer.clone());
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("request", id = "ab12-7", method = "GET", path = "/v2/");
            let _entered = span.enter();
            tracing::info!(status = 200, "answered");
            tracing::debug!("filtered out");
        });
        String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn json_lines_carry_the_request_span() {
        let text = logged(LogFormat::Json);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "{text}");
        let event: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(event["message"], "answered");
        assert_eq!(event["status"], 200);
        assert_eq!(event["level"], "INFO");
        assert_eq!(event["span"]["name"], "request");
        assert_eq!(event["span"]["id"], "ab12-7");
        assert_eq!(event["span"]["method"], "GET");
        assert_eq!(event["span"]["path"], "/v2/");
    }

    #[test]
    fn text_lines_are_for_people() {
        let text = logged(LogFormat::Text);
        assert!(text.contains("request{id=\"ab12-7\" method=\"GET\" path=\"/v2/\"}: answered status=200"), "{text}");
        assert!(serde_json::from_str::<serde_json::Value>(text.trim()).is_err());
    }
}
