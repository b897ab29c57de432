//! The metrics of every dataflow a host runs, served together at one address: each family's
//! `# HELP` and `# TYPE` once, then the samples of every dataflow (told apart by their
//! `endpoint` and `table` labels), as the text exposition format requires.

use std::sync::{Arc, Mutex};

use super::Metrics;

#[derive(Default)]
pub struct Registry(Mutex<Vec<Arc<Metrics>>>);

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Registry({} dataflows)", self.0.lock().unwrap().len())
    }
}

impl Registry {
    pub fn add(&self, metrics: Arc<Metrics>) {
        self.0.lock().unwrap().push(metrics);
    }

    /// `Ok` when every dataflow is ready; else why not, one line per dataflow that is not
    /// (and before the first dataflow started, that it is starting).
    pub fn readiness(&self) -> Result<(), Vec<String>> {
        let dataflows = self.0.lock().unwrap();
        if dataflows.is_empty() {
            return Err(vec!["starting: no dataflow runs yet".into()]);
        }
        let reasons: Vec<String> = dataflows.iter().filter_map(|m| m.unready()).collect();
        match reasons.is_empty() {
            true => Ok(()),
            false => Err(reasons),
        }
    }

    pub fn render(&self) -> String {
        let texts: Vec<String> = self.0.lock().unwrap().iter().map(|m| m.render()).collect();
        merge(&texts)
    }
}

/// Merges expositions of the same families: the metadata of a family once, its samples from
/// every text after it, families in the order they first appear.
fn merge(texts: &[String]) -> String {
    let mut families: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    for text in texts {
        let mut current = None;
        for line in text.lines() {
            let metadata = line
                .strip_prefix("# HELP ")
                .or_else(|| line.strip_prefix("# TYPE "));
            let index = match metadata {
                Some(rest) => {
                    let name = rest.split(' ').next().unwrap_or_default();
                    let index = match families.iter().position(|(n, _, _)| n == name) {
                        Some(index) => index,
                        None => {
                            families.push((name.to_string(), Vec::new(), Vec::new()));
                            families.len() - 1
                        }
                    };
                    current = Some(index);
                    let lines = &mut families[index].1;
                    if !lines.iter().any(|l| l == line) {
                        lines.push(line.to_string());
                    }
                    continue;
                }
                None => current,
            };
            if let Some(index) = index {
                families[index].2.push(line.to_string());
            }
        }
    }
    let mut out = String::new();
    for (_, metadata, samples) in families {
        for line in metadata.iter().chain(&samples) {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_family_is_described_once_with_the_samples_of_every_dataflow() {
        let registry = Registry::default();
        let (a, b) = (
            Metrics::new("adx-a", "readings"),
            Metrics::new("adx-b", "alerts"),
        );
        a.received.add(3);
        b.received.add(5);
        registry.add(a);
        registry.add(b);
        let text = registry.render();
        let help = "# HELP dataflow_messages_received_total";
        assert_eq!(text.matches(help).count(), 1, "{text}");
        let family: Vec<&str> = text
            .lines()
            .skip_while(|l| !l.starts_with(help))
            .skip(2)
            .take(2)
            .collect();
        assert!(
            family[0].contains("endpoint=\"adx-a\"") && family[0].ends_with(" 3"),
            "{text}"
        );
        assert!(
            family[1].contains("endpoint=\"adx-b\"") && family[1].ends_with(" 5"),
            "{text}"
        );
        assert_eq!(
            text.matches("# TYPE dataflow_request_duration_seconds histogram")
                .count(),
            1
        );
    }
}
