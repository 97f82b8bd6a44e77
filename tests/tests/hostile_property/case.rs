//! One case: its lines, the files they are cut into, the landing groups and batch limits.

use std::collections::BTreeMap;

use crate::hostile::hostile;
use crate::line::{Fate, Line, valid_line};
use crate::record::Record;
use crate::rng::Rng;

/// Where a line landed, as bronze records it: (`_source_file`, `_source_line`).
pub type Place = (String, i64);

/// A landed file: its name and its lines (each on its own physical line, numbered from 1).
pub struct File {
    pub name: String,
    /// Indexes into the case's lines, in file order.
    pub lines: Vec<usize>,
    pub crlf: bool,
    pub bom: bool,
    pub final_eol: bool,
}

impl File {
    /// The file's bytes: its mark, its lines, their line ends.
    pub fn bytes(&self, lines: &[Line]) -> Vec<u8> {
        let eol: &[u8] = if self.crlf { b"\r\n" } else { b"\n" };
        let mut out = Vec::new();
        if self.bom {
            out.extend_from_slice(b"\xEF\xBB\xBF");
        }
        for (k, &i) in self.lines.iter().enumerate() {
            out.extend_from_slice(&lines[i].bytes);
            if k + 1 < self.lines.len() || self.final_eol {
                out.extend_from_slice(eol);
            }
        }
        out
    }
}

/// One case's input: lines, the files they were cut into, and the landing groups.
pub struct Case {
    pub seed: u64,
    pub lines: Vec<Line>,
    pub files: Vec<File>,
    /// Indexes into `files`, one group per run.
    pub groups: Vec<Vec<usize>>,
    /// Per run: `max_files_per_batch` and `max_bytes_per_batch`.
    pub limits: Vec<(usize, Option<u64>)>,
}

impl Case {
    /// The case of `seed`. The steps draw from one generator in this order, which is what
    /// makes a seed replay its case.
    pub fn generate(seed: u64) -> Self {
        let mut rng = Rng(seed);
        let lines = generate_lines(&mut rng);
        let files = cut_into_files(&mut rng, &lines);
        let groups = cut_into_groups(&mut rng, files.len());
        let limits = groups
            .iter()
            .map(|_| {
                let bytes = *rng.pick(&[None, None, Some(256), Some(4096)]);
                (rng.range(1, 3), bytes)
            })
            .collect();
        Self {
            seed,
            lines,
            files,
            groups,
            limits,
        }
    }

    /// Every non-blank line by its place.
    pub fn placed(&self) -> BTreeMap<Place, &Line> {
        let mut out = BTreeMap::new();
        for file in &self.files {
            for (k, &i) in file.lines.iter().enumerate() {
                let line = &self.lines[i];
                if !matches!(line.fate, Fate::Blank) {
                    out.insert((file.name.clone(), k as i64 + 1), line);
                }
            }
        }
        out
    }

    /// The case in one line, for failure messages: kinds, files, groups and limits.
    pub fn summary(&self) -> String {
        let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
        for line in &self.lines {
            *kinds.entry(line.kind).or_default() += 1;
        }
        let files: Vec<String> = self
            .files
            .iter()
            .map(|f| {
                format!(
                    "{}({} lines{}{}{})",
                    f.name,
                    f.lines.len(),
                    if f.crlf { ", crlf" } else { "" },
                    if f.bom { ", bom" } else { "" },
                    if f.final_eol { "" } else { ", no final eol" }
                )
            })
            .collect();
        format!(
            "seed {}: {} lines {kinds:?}; files {}; groups {:?}; limits {:?}",
            self.seed,
            self.lines.len(),
            files.join(" "),
            self.groups,
            self.limits
        )
    }
}

/// 30–80 valid records (ids with quotes, backslashes, tabs, non-ASCII) and 30–80 hostile
/// lines, valid first; none holds a line feed.
fn generate_lines(rng: &mut Rng) -> Vec<Line> {
    let valid = rng.range(30, 80);
    let hostile_n = rng.range(30, 80);
    let records: Vec<Record> = (0..valid)
        .map(|i| {
            let suffix = *rng.pick(&["", "", "-é", "-😀", "-\"q\"", "-back\\slash", "-tab\t"]);
            Record::random(rng, format!("v{i:03}{suffix}"))
        })
        .collect();
    let ids: Vec<String> = records.iter().map(|r| r.id.clone()).collect();
    let mut lines: Vec<Line> = records.iter().map(|r| valid_line(rng, r)).collect();
    lines.extend((0..hostile_n).map(|n| hostile(rng, n, &ids)));
    for line in &lines {
        assert!(!line.bytes.contains(&b'\n'), "a generated line has no LF");
    }
    lines
}

/// The lines shuffled and cut into 1–8 files (some maybe empty), with odd names, CRLF or
/// not, a byte-order mark or not, a last line end or not.
fn cut_into_files(rng: &mut Rng, lines: &[Line]) -> Vec<File> {
    let mut order: Vec<usize> = (0..lines.len()).collect();
    rng.shuffle(&mut order);
    let file_count = rng.range(1, 8);
    let mut cuts: Vec<usize> = (1..file_count).map(|_| rng.range(0, order.len())).collect();
    cuts.push(0);
    cuts.push(order.len());
    cuts.sort_unstable();
    let extensions = ["json", "json", "jsonl", "ndjson"];
    let decorations = [
        "",
        "",
        "",
        " copy (1)",
        "-é😀",
        "%20x",
        "#?&=",
        "'\"",
        ",;{}",
    ];
    cuts.windows(2)
        .enumerate()
        .map(|(i, w)| File {
            name: format!(
                "f{i:03}{}.{}",
                rng.pick(&decorations),
                rng.pick(&extensions)
            ),
            lines: order[w[0]..w[1]].to_vec(),
            crlf: rng.chance(35),
            // A mark that starts a file is the file's, not its first line's: a line
            // that must keep one mid-file gets a file mark before it.
            bom: rng.chance(35)
                || order[w[0]..w[1]]
                    .first()
                    .is_some_and(|&i| lines[i].kind == "bom_mid_file"),
            final_eol: rng.chance(75),
        })
        .collect()
}

/// The files in random landing order, cut into 1–4 groups (each read by one run).
fn cut_into_groups(rng: &mut Rng, file_count: usize) -> Vec<Vec<usize>> {
    let mut landing: Vec<usize> = (0..file_count).collect();
    rng.shuffle(&mut landing);
    let group_count = rng.range(1, file_count.min(4));
    let mut cuts: Vec<usize> = (1..group_count)
        .map(|_| rng.range(1, landing.len() - 1))
        .collect();
    cuts.push(0);
    cuts.push(landing.len());
    cuts.sort_unstable();
    cuts.dedup();
    cuts.windows(2)
        .map(|w| landing[w[0]..w[1]].to_vec())
        .collect()
}
