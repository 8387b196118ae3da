//! The `enclave.*` parameters of the kernel command line.
//!
//! The command line is measured like the file, so a parameter
//! `enclave.<section>.<field>=<value>` may override one field; every other
//! parameter belongs to the kernel or to someone else and is ignored.

/// The `enclave.*` parameters of a kernel command line, in order (a later one
/// wins). The kernel allows double quotes around values with spaces.
pub(super) fn overrides(cmdline: &str) -> Vec<(String, String)> {
    split(cmdline)
        .into_iter()
        .filter_map(|param| {
            let rest = param.strip_prefix("enclave.")?;
            let (key, value) = rest.split_once('=').unwrap_or((rest, ""));
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Splits a kernel command line as the kernel does (`next_arg` in
/// lib/cmdline.c): on whitespace, with double quotes grouping and removed.
fn split(cmdline: &str) -> Vec<String> {
    let mut params = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut any = false;
    for c in cmdline.chars() {
        match c {
            '"' => {
                in_quotes = !in_quotes;
                any = true;
            }
            c if c.is_whitespace() && !in_quotes => {
                if any {
                    params.push(std::mem::take(&mut current));
                    any = false;
                }
            }
            c => {
                current.push(c);
                any = true;
            }
        }
    }
    if any {
        params.push(current);
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_splitting_follows_the_kernel() {
        assert_eq!(split("  a  b=\"c d\" \"e f\"\n"), vec!["a", "b=c d", "e f"]);
        assert_eq!(split(""), Vec::<String>::new());
    }
}
