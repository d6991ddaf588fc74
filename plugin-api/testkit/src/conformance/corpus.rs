//! Texts to throw at `validate`: a fixed corpus of nasty inputs, every field of the valid
//! configuration replaced by values of the wrong type (and removed), and pseudo-random JSON from
//! a seeded generator, half of it grafted onto the valid configuration.
//!
//! Everything is deterministic for a given seed, so a failure names an input that can be
//! reproduced. No dependency beyond serde_json: the generator is SplitMix64.

use serde_json::{Map, Number, Value};

/// How deep the valid configuration is walked for fields to replace.
const MAX_FIELD_DEPTH: usize = 4;
/// How many fields of the valid configuration are replaced at most.
const MAX_FIELDS: usize = 64;
/// Size of the huge strings put into fields (the top-level huge string is 16 times larger).
const HUGE: usize = 64 * 1024;

/// Every input for a valid configuration `valid`, `random` of them pseudo-random from `seed`.
pub(crate) fn inputs(valid: &str, seed: u64, random: usize) -> Vec<String> {
    let mut out = fixed_texts();
    out.extend(replacements().iter().map(Value::to_string));
    let valid = serde_json::from_str::<Value>(valid).ok();
    let paths = valid.as_ref().map(field_paths).unwrap_or_default();
    if let Some(valid) = &valid {
        out.push(format!("\u{feff}{valid}"));
        out.push(format!("{valid}{valid}"));
        for path in &paths {
            let mut removed = valid.clone();
            remove_at(&mut removed, path);
            out.push(removed.to_string());
            for replacement in replacements() {
                let mut changed = valid.clone();
                set_at(&mut changed, path, replacement);
                out.push(changed.to_string());
            }
        }
    }
    let keys: Vec<String> = paths.iter().filter_map(|p| p.last().cloned()).collect();
    // The huge and deep edge values are covered above; random inputs stay small.
    let small: Vec<Value> = replacements().into_iter().filter(|v| v.to_string().len() < 256).collect();
    let generator = Generator { keys: &keys, edges: &small };
    let mut rng = Rng(seed);
    for n in 0..random {
        let value = generator.value(&mut rng, 0);
        match (&valid, paths.is_empty(), n % 2) {
            (Some(valid), false, 0) => {
                let mut changed = valid.clone();
                let path = &paths[rng.below(paths.len())];
                set_at(&mut changed, path, value);
                out.push(changed.to_string());
            }
            _ => out.push(value.to_string()),
        }
    }
    out
}

/// Texts that are not JSON, or JSON that is awkward as a whole.
fn fixed_texts() -> Vec<String> {
    let mut texts: Vec<String> = [
        "",
        " ",
        "\n",
        "{",
        "}",
        "[",
        "]",
        "{\"a\":",
        "{\"a\":1,}",
        "{}{}",
        "{} trailing",
        "nul",
        "tru",
        "-",
        "1e400",
        "\u{0}",
        "\u{feff}{}",
        "{\"\\ud800\":1}",
        "\"\\ud800\"",
        "{\"a\":\"\\u0000\"}",
        "{\"a\":1,\"a\":\"x\"}",
        "'single'",
        "{a:1}",
        "[1,2",
        "\"unterminated",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    texts.push("[".repeat(10_000));
    texts.push(format!("{}1{}", "{\"a\":".repeat(1_000), "}".repeat(1_000)));
    texts.push(Value::String("x".repeat(HUGE * 16)).to_string());
    texts.push(Value::Array((0..10_000).map(Value::from).collect()).to_string());
    let wide: Map<String, Value> = (0..1_000).map(|i| (format!("k{i}"), Value::from(i))).collect();
    texts.push(Value::Object(wide).to_string());
    texts
}

/// Values of every JSON type, at the edges of each.
fn replacements() -> Vec<Value> {
    let mut nested = Value::Null;
    for _ in 0..100 {
        nested = Value::Array(vec![nested]);
    }
    let mut deep_object = Value::Null;
    for _ in 0..100 {
        deep_object = Value::Object(Map::from_iter([("a".to_string(), deep_object)]));
    }
    vec![
        Value::Null,
        Value::Bool(true),
        Value::Bool(false),
        Value::from(0),
        Value::from(-1),
        Value::from(i64::MIN),
        Value::from(u64::MAX),
        Value::from(1.5),
        Value::from(-0.0),
        Value::from(1e308),
        Value::from(-1e308),
        Value::from(5e-324),
        Value::from(""),
        Value::from(" "),
        Value::from("0"),
        Value::from("-1"),
        Value::from("true"),
        Value::from("null"),
        Value::from("99999999999999999999999"),
        Value::from("${topic}${"),
        Value::from("\u{0}\u{7f}\n\r\t"),
        Value::from("ünïcødé 😀 \u{202e}rtl \u{feff} \u{301}"),
        Value::from("x".repeat(HUGE)),
        Value::Array(Vec::new()),
        Value::Array(vec![Value::Null]),
        nested,
        Value::Object(Map::new()),
        Value::Object(Map::from_iter([(String::new(), Value::from(""))])),
        deep_object,
    ]
}

/// A step into a JSON value: an object key, or an array index written as `[i]`.
type Path = Vec<String>;

/// Paths of the fields of `value` (objects recursively, the first element of arrays).
fn field_paths(value: &Value) -> Vec<Path> {
    let mut out = Vec::new();
    walk(value, &mut Vec::new(), &mut out);
    out.truncate(MAX_FIELDS);
    out
}

fn walk(value: &Value, prefix: &mut Path, out: &mut Vec<Path>) {
    if prefix.len() >= MAX_FIELD_DEPTH {
        return;
    }
    let children: Vec<(String, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (k.clone(), v)).collect(),
        Value::Array(items) => items.first().map(|v| ("[0]".to_string(), v)).into_iter().collect(),
        _ => Vec::new(),
    };
    for (step, child) in children {
        prefix.push(step);
        out.push(prefix.clone());
        walk(child, prefix, out);
        prefix.pop();
    }
}

fn child_mut<'v>(value: &'v mut Value, step: &str) -> Option<&'v mut Value> {
    match value {
        Value::Object(map) => map.get_mut(step),
        Value::Array(items) if step == "[0]" => items.first_mut(),
        _ => None,
    }
}

fn set_at(value: &mut Value, path: &[String], new: Value) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut target = value;
    for step in parents {
        match child_mut(target, step) {
            Some(child) => target = child,
            None => return,
        }
    }
    if let Some(slot) = child_mut(target, last) {
        *slot = new;
    }
}

fn remove_at(value: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else { return };
    let mut target = value;
    for step in parents {
        match child_mut(target, step) {
            Some(child) => target = child,
            None => return,
        }
    }
    match target {
        Value::Object(map) => {
            map.shift_remove(last);
        }
        Value::Array(items) if last == "[0]" && !items.is_empty() => {
            items.remove(0);
        }
        _ => {}
    }
}

/// SplitMix64: tiny, fast and good enough to pick test inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Characters random strings are made of: plain, JSON-significant, control and non-ASCII.
const ALPHABET: &[char] = &[
    'a', 'Z', '0', '9', ' ', '"', '\\', '/', '$', '{', '}', ':', ',', '.', '-', '%', '\0', '\u{7f}', '\n', 'é', '😀',
    '\u{202e}', '\u{feff}',
];

fn random_string(rng: &mut Rng) -> String {
    let len = rng.below(24);
    (0..len).map(|_| ALPHABET[rng.below(ALPHABET.len())]).collect()
}

/// Random JSON values whose object keys are often the valid configuration's field names.
struct Generator<'a> {
    keys: &'a [String],
    edges: &'a [Value],
}

impl Generator<'_> {
    fn value(&self, rng: &mut Rng, depth: usize) -> Value {
        let kinds = if depth >= 3 { 6 } else { 8 };
        match rng.below(kinds) {
            0 => Value::Null,
            1 => Value::Bool(rng.below(2) == 1),
            2 => Value::from(rng.next() as i64 >> rng.below(64)),
            3 => Number::from_f64(f64::from_bits(rng.next())).map_or(Value::from(0.5), Value::Number),
            4 => Value::from(random_string(rng)),
            5 => self.edges[rng.below(self.edges.len())].clone(),
            6 => Value::Array((0..rng.below(4)).map(|_| self.value(rng, depth + 1)).collect()),
            _ => Value::Object((0..rng.below(5)).map(|_| (self.key(rng), self.value(rng, depth + 1))).collect()),
        }
    }

    fn key(&self, rng: &mut Rng) -> String {
        if self.keys.is_empty() || rng.below(3) == 0 {
            random_string(rng)
        } else {
            self.keys[rng.below(self.keys.len())].clone()
        }
    }
}
