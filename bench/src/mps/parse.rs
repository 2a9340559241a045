//! Parsers for what `nvidia-cuda-mps-control` prints, built on the texts recorded on a real H100 (driver 580)
//! in `shared/facts/mps-ground-truth.md`. Pure functions; anything unrecognised is kept verbatim.

use serde::{Deserialize, Serialize};

/// One row of the `ps` client table:
/// `PID ID SERVER DEVICE NAMESPACE COMMAND` / `452 1 470 GPU-e370a465-49c4-8458 4026531836 python3`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRow {
    pub pid: u32,
    pub context_id: Option<u32>,
    pub server_pid: Option<u32>,
    /// GPU UUID prefix as printed.
    pub device: Option<String>,
    /// Inode of the client's PID namespace (absent on drivers that print no NAMESPACE column).
    pub pid_namespace: Option<u64>,
    pub command: String,
}

/// What the control client's answer means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ControlAnswer {
    /// The daemon is up and has no server yet (`Server not found`): healthy, no client has connected.
    NoServer,
    /// The daemon is up and lists these clients.
    Clients { rows: Vec<ClientRow> },
    /// `Cannot find MPS control daemon process`: no daemon reachable through this pipe directory.
    NoDaemon,
    /// `Connection refused`: a socket exists but nothing listens (stale socket, daemon gone).
    ConnectionRefused,
    /// `Transport endpoint is not connected`: a broken mount of the pipe directory.
    TransportNotConnected,
    /// Anything else, verbatim.
    Other { text: String },
}

/// Parses one table row; `None` when the line is not a row.
fn parse_row(line: &str, header: &[&str]) -> Option<ClientRow> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let column = |name: &str| header.iter().position(|h| *h == name).and_then(|i| words.get(i).copied());
    let pid = column("PID")?.parse().ok()?;
    let command_at = header.iter().position(|h| *h == "COMMAND").unwrap_or(words.len());
    Some(ClientRow {
        pid,
        context_id: column("ID").and_then(|w| w.parse().ok()),
        server_pid: column("SERVER").and_then(|w| w.parse().ok()),
        device: column("DEVICE").map(str::to_string),
        pid_namespace: column("NAMESPACE").and_then(|w| w.parse().ok()),
        command: words.get(command_at..).map(|w| w.join(" ")).unwrap_or_default(),
    })
}

/// Parses the output (stdout and stderr together) of `echo ps | nvidia-cuda-mps-control`.
pub fn parse_ps(output: &str) -> ControlAnswer {
    let text = output.trim();
    if let Some(answer) = parse_known_failure(text) {
        return answer;
    }
    if text.contains("Server not found") {
        return ControlAnswer::NoServer;
    }
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    match lines.next() {
        Some(first) if first.split_whitespace().next() == Some("PID") => {
            let header: Vec<&str> = first.split_whitespace().collect();
            let rows: Option<Vec<ClientRow>> = lines.map(|l| parse_row(l, &header)).collect();
            match rows {
                Some(rows) => ControlAnswer::Clients { rows },
                None => ControlAnswer::Other { text: text.to_string() },
            }
        }
        // Observed on driver 580: once the MPS server runs and its clients have all exited, `ps` prints nothing.
        None => ControlAnswer::Clients { rows: vec![] },
        Some(_) => ControlAnswer::Other { text: text.to_string() },
    }
}

/// The failures every control command can print.
pub fn parse_known_failure(text: &str) -> Option<ControlAnswer> {
    if text.contains("Cannot find MPS control daemon process") {
        Some(ControlAnswer::NoDaemon)
    } else if text.contains("Connection refused") {
        Some(ControlAnswer::ConnectionRefused)
    } else if text.contains("Transport endpoint is not connected") {
        Some(ControlAnswer::TransportNotConnected)
    } else {
        None
    }
}

/// Parses `get_server_list`: one server pid per line (empty when there is none).
pub fn parse_server_list(output: &str) -> Result<Vec<u32>, ControlAnswer> {
    if let Some(failure) = parse_known_failure(output) {
        return Err(failure);
    }
    output
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.parse().map_err(|_| ControlAnswer::Other { text: output.trim().to_string() }))
        .collect()
}

/// Parses `get_device_client_list`: device lines like `[0] 00:00.0, NVIDIA H100 80GB HBM3` followed by client
/// lines `pid` or `pid.context`; returns the client pids.
pub fn parse_device_client_list(output: &str) -> Result<Vec<u32>, ControlAnswer> {
    if let Some(failure) = parse_known_failure(output) {
        return Err(failure);
    }
    Ok(output
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('['))
        .filter_map(|l| l.split(['.', ' ']).next()?.parse().ok())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_daemon_without_server() {
        assert_eq!(parse_ps("Server not found\n"), ControlAnswer::NoServer);
    }

    #[test]
    fn empty_output_is_a_server_without_clients() {
        assert_eq!(parse_ps(""), ControlAnswer::Clients { rows: vec![] });
        assert_eq!(parse_ps("\n"), ControlAnswer::Clients { rows: vec![] });
    }

    #[test]
    fn client_table_from_the_h100() {
        let out = "PID ID SERVER DEVICE NAMESPACE COMMAND\n452 1 470 GPU-e370a465-49c4-8458 4026531836 python3\n";
        let ControlAnswer::Clients { rows } = parse_ps(out) else { panic!("not a table") };
        assert_eq!(
            rows,
            vec![ClientRow {
                pid: 452,
                context_id: Some(1),
                server_pid: Some(470),
                device: Some("GPU-e370a465-49c4-8458".into()),
                pid_namespace: Some(4026531836),
                command: "python3".into(),
            }]
        );
    }

    #[test]
    fn commands_with_spaces_and_tables_without_namespace() {
        let out = "PID ID SERVER DEVICE COMMAND\n9 2 7 GPU-1 /usr/bin/sharebench run --mode mps\n";
        let ControlAnswer::Clients { rows } = parse_ps(out) else { panic!() };
        assert_eq!(rows[0].pid_namespace, None);
        assert_eq!(rows[0].command, "/usr/bin/sharebench run --mode mps");
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(parse_ps("Cannot find MPS control daemon process\n"), ControlAnswer::NoDaemon);
        assert_eq!(parse_ps("connect: Connection refused"), ControlAnswer::ConnectionRefused);
        assert_eq!(parse_ps("Transport endpoint is not connected"), ControlAnswer::TransportNotConnected);
        assert_eq!(parse_ps("weird\n"), ControlAnswer::Other { text: "weird".into() });
        assert_eq!(
            parse_ps("PID ID\nnot-a-number 1\n"),
            ControlAnswer::Other { text: "PID ID\nnot-a-number 1".into() }
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_control_output_never_panics(text in "(PID ID SERVER DEVICE NAMESPACE COMMAND\n)?[ -~\n]{0,300}") {
            let _ = parse_ps(&text);
            let _ = parse_server_list(&text);
            let _ = parse_device_client_list(&text);
        }
    }

    #[test]
    fn server_and_device_client_lists() {
        assert_eq!(parse_server_list("470\n"), Ok(vec![470]));
        assert_eq!(parse_server_list(""), Ok(vec![]));
        assert_eq!(parse_server_list("Cannot find MPS control daemon process"), Err(ControlAnswer::NoDaemon));
        let list = "[0] 00:00.0, NVIDIA H100 80GB HBM3\n452.1\n460\n";
        assert_eq!(parse_device_client_list(list), Ok(vec![452, 460]));
    }
}
