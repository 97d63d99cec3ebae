//! The documentation's links hold: every relative link in the repository's
//! Markdown points to a file that exists, and every `#anchor` to a heading
//! of its target, so a section moved or renamed cannot leave a link
//! dangling; and the README, the front door, links every page of `docs/`.
//! Reads files only.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Markdown files under `dir`, outside build output, npm packages and
/// hidden directories.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The lines of `text`, those of fenced code blocks (and the fences) empty.
fn outside_fences(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .map(|line| {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                ""
            } else if fenced {
                ""
            } else {
                line
            }
        })
        .collect()
}

/// The targets of the links `[text](target)` in prose: outside code blocks
/// and code spans, external ones (`scheme://`, `mailto:`) left out.
fn relative_links(text: &str) -> Vec<String> {
    let prose: String = outside_fences(text)
        .join("\n")
        .split('`')
        .step_by(2)
        .collect();
    prose
        .split("](")
        .skip(1)
        .filter_map(|after| after.split_once(')'))
        .map(|(target, _)| target.to_owned())
        .filter(|target| !target.contains("://") && !target.starts_with("mailto:"))
        .collect()
}

/// The anchors GitHub gives the headings of `text`: lower case, spaces as
/// hyphens, punctuation and code marks dropped; a repeated one gets `-1`,
/// `-2`, ...
fn anchors(text: &str) -> HashSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = HashSet::new();
    for line in outside_fences(text) {
        let hashes = line.len() - line.trim_start_matches('#').len();
        let Some(title) = line[hashes..]
            .strip_prefix(' ')
            .filter(|_| (1..=6).contains(&hashes))
        else {
            continue;
        };
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter_map(|c| match c {
                ' ' => Some('-'),
                '-' | '_' => Some(c),
                c if c.is_alphanumeric() => Some(c),
                _ => None,
            })
            .collect();
        let repeats = seen.entry(slug.clone()).or_default();
        anchors.insert(match *repeats {
            0 => slug,
            n => format!("{slug}-{n}"),
        });
        *repeats += 1;
    }
    anchors
}

#[test]
fn every_relative_link_names_an_existing_file_and_heading() {
    let mut files = Vec::new();
    markdown_files(root(), &mut files);
    assert!(
        files.iter().any(|f| f.ends_with("docs/client-api.md")),
        "{files:?}"
    );
    let mut broken = Vec::new();
    for file in &files {
        let shown = file.strip_prefix(root()).unwrap().display();
        for target in relative_links(&read(file)) {
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let dest = match path {
                "" => file.clone(),
                path => file.parent().unwrap().join(path),
            };
            if !dest.exists() {
                broken.push(format!("{shown}: ({target}): no such file"));
            } else if !anchor.is_empty()
                && dest.extension().is_some_and(|e| e == "md")
                && !anchors(&read(&dest)).contains(anchor)
            {
                broken.push(format!("{shown}: ({target}): no such heading"));
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_readme_links_every_page_of_docs() {
    let readme = relative_links(&read(&root().join("README.md")));
    let linked: HashSet<&str> = readme
        .iter()
        .map(|target| target.split('#').next().unwrap())
        .collect();
    let mut pages: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .map(|name| format!("docs/{name}"))
        .collect();
    pages.sort();
    let unlinked: Vec<&String> = pages
        .iter()
        .filter(|page| !linked.contains(page.as_str()))
        .collect();
    assert!(unlinked.is_empty(), "README.md links none of {unlinked:?}");
}

#[test]
fn anchors_are_github_s() {
    let headings = "# Client API\n## What `make run` and `make test` do\n\
                    ### Topics and schemas (the producers' contract)\n\
                    ```sh\n# not a heading\n```\n## Errors\n## Errors\n#nope";
    let mut found: Vec<String> = anchors(headings).into_iter().collect();
    found.sort();
    assert_eq!(
        found,
        [
            "client-api",
            "errors",
            "errors-1",
            "topics-and-schemas-the-producers-contract",
            "what-make-run-and-make-test-do",
        ]
    );
}
