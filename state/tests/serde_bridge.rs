//! The serde bridge: foreign serde types as fields, serde attributes,
//! evolution, determinism, errors and hostile input.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use stateify::serde::Serde;
use stateify::Stateify;

fn round<T: Stateify>(v: &T) -> T {
    let bytes = stateify::to_vec(v).unwrap();
    stateify::from_slice(&bytes).unwrap()
}

// ---- foreign types ------------------------------------------------------

#[derive(Stateify, Debug, PartialEq)]
struct Session {
    #[state(serde)]
    id: uuid::Uuid,
    #[state(serde)]
    started: chrono::DateTime<chrono::Utc>,
    #[state(serde)]
    home: url::Url,
    #[state(serde)]
    peer: IpAddr,
    #[state(serde)]
    seen: Option<chrono::NaiveDate>,
    hits: u64,
}

fn session() -> Session {
    Session {
        id: uuid::Uuid::from_u128(0x67e5_5044_10b1_426f_9247_bb68_0e5f_e0c8),
        started: chrono::DateTime::from_timestamp(1_700_000_000, 123_456_789).unwrap(),
        home: url::Url::parse("https://example.org/a/b?q=1#frag").unwrap(),
        peer: "2001:db8::1".parse().unwrap(),
        seen: chrono::NaiveDate::from_ymd_opt(2026, 12, 2),
        hits: 42,
    }
}

#[test]
fn foreign_serde_types_round_trip() {
    let s = session();
    assert_eq!(round(&s), s);
}

#[test]
fn foreign_serde_types_show_in_pretty() {
    let bytes = stateify::to_vec(&session()).unwrap();
    insta::assert_snapshot!(stateify::pretty::to_string(&bytes).unwrap());
}

// ---- serde attributes ---------------------------------------------------

fn three() -> u32 {
    3
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Limits {
    max_conn: u32,
    #[serde(default = "three")]
    retries: u32,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
#[serde(tag = "kind")]
enum Backend {
    Disk { path: String },
    Memory { bytes: u64 },
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
#[serde(tag = "t", content = "c")]
enum Level {
    Quiet,
    Verbose(u8),
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
#[serde(untagged)]
enum Port {
    Number(u16),
    Named(String),
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Mode {
    Off,
    Fixed(u32),
    Pair(i8, i8),
    Ranged { lo: i64, hi: i64 },
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Meters(f64);

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Marker;

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Config {
    #[serde(rename = "service-name")]
    name: String,
    #[serde(alias = "old_port")]
    port: Port,
    #[serde(skip)]
    cache: Vec<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    #[serde(flatten)]
    limits: Limits,
    backend: Backend,
    level: Level,
    modes: Vec<Mode>,
    width: Meters,
    marker: Marker,
    labels: HashMap<String, String>,
    ordered: BTreeMap<u32, Vec<i32>>,
    blob: serde_bytes_like::Bytes,
    big: (u128, i128, i64, char, bool, f32, f64, ()),
}

/// `serde_bytes` without the dependency: a Vec<u8> written with `serialize_bytes`.
mod serde_bytes_like {
    #[derive(Debug, PartialEq, Clone)]
    pub struct Bytes(pub Vec<u8>);
    impl serde::Serialize for Bytes {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }
    impl<'de> serde::Deserialize<'de> for Bytes {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl<'de> serde::de::Visitor<'de> for V {
                type Value = Bytes;
                fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E>(self, b: &[u8]) -> Result<Bytes, E> {
                    Ok(Bytes(b.to_vec()))
                }
            }
            d.deserialize_bytes(V)
        }
    }
}

fn config(i: u32) -> Config {
    Config {
        name: format!("svc-{i}"),
        port: if i % 2 == 0 {
            Port::Number(8000 + i as u16)
        } else {
            Port::Named("http".into())
        },
        cache: Vec::new(),
        note: (i % 3 == 0).then(|| format!("note {i}")),
        limits: Limits {
            max_conn: 100 * i,
            retries: i,
        },
        backend: if i % 2 == 0 {
            Backend::Disk {
                path: format!("/var/{i}"),
            }
        } else {
            Backend::Memory { bytes: 1 << i }
        },
        level: if i % 2 == 0 {
            Level::Quiet
        } else {
            Level::Verbose(i as u8)
        },
        modes: vec![
            Mode::Off,
            Mode::Fixed(i),
            Mode::Pair(-1, 1),
            Mode::Ranged { lo: -5, hi: 5 },
        ],
        width: Meters(1.5 * i as f64),
        marker: Marker,
        labels: (0..i).map(|k| (format!("k{k}"), format!("v{k}"))).collect(),
        ordered: (0..i)
            .map(|k| (k * 7, vec![-(k as i32), k as i32]))
            .collect(),
        blob: serde_bytes_like::Bytes(vec![0, 1, 2, 255]),
        big: (
            u128::MAX,
            i128::MIN,
            i64::MIN,
            'ß',
            true,
            f32::NAN,
            -0.0,
            (),
        ),
    }
}

#[derive(Stateify)]
struct Holder {
    #[state(serde)]
    configs: Vec<Config>,
    plain: Vec<Serde<Config>>,
}

fn same_config(a: &Config, b: &Config) {
    // NaN is not equal to itself: compare its bits, then the rest.
    assert_eq!(a.big.5.to_bits(), b.big.5.to_bits());
    assert_eq!(a.big.6.to_bits(), b.big.6.to_bits());
    let mut a = a.clone();
    let mut b = b.clone();
    a.big.5 = 0.0;
    b.big.5 = 0.0;
    assert_eq!(a, b);
}

#[test]
fn serde_attributes_round_trip() {
    // Alternating layouts (skip_serializing_if, flatten, tagged enums)
    // within one graph and across saves.
    let configs: Vec<Config> = (0..7).map(config).collect();
    let h = Holder {
        configs: configs.clone(),
        plain: configs.iter().cloned().map(Serde).collect(),
    };
    let bytes = stateify::to_vec(&h).unwrap();
    let back: Holder = stateify::from_slice(&bytes).unwrap();
    for (a, b) in configs.iter().zip(&back.configs) {
        same_config(a, b);
    }
    for (a, b) in configs.iter().zip(&back.plain) {
        same_config(a, b);
    }
    // The same bytes again, now that every layout is learned.
    assert_eq!(stateify::to_vec(&h).unwrap(), bytes);
    let one = stateify::to_vec(&Serde(config(3))).unwrap();
    insta::assert_snapshot!(stateify::pretty::to_string(&one).unwrap());
}

// ---- determinism and the derived encoding --------------------------------

#[test]
fn hash_maps_are_written_in_one_order() {
    let entries: Vec<(String, u32)> = (0..200).map(|i| (format!("key{i}"), i)).collect();
    let a: HashMap<String, u32> = entries.iter().cloned().collect();
    let b: HashMap<String, u32> = entries.iter().rev().cloned().collect();
    let (ea, eb) = (
        stateify::to_vec(&Serde(a.clone())).unwrap(),
        stateify::to_vec(&Serde(b)).unwrap(),
    );
    assert_eq!(ea, eb);
    // The order derived hash maps use: the same bytes as without serde.
    assert_eq!(ea, stateify::to_vec(&a).unwrap());
}

#[derive(Serialize, Deserialize, Stateify, Debug, PartialEq, Clone)]
struct Point {
    x: i32,
    y: i32,
    tag: Option<String>,
    hist: Vec<u16>,
}

#[derive(Serialize, Deserialize, Stateify, Debug, PartialEq, Clone)]
enum Shape {
    Dot,
    Circle(u32),
    Rect { w: u32, h: u32 },
}

#[test]
fn a_type_moves_between_derive_and_serde() {
    let p = Point {
        x: -3,
        y: 4,
        tag: Some("a".into()),
        hist: vec![1, 2, 3],
    };
    // Structs: the very same bytes, but for sequences of numbers, which
    // serde hands over one number at a time (a SEQ) and the derive as one
    // packed array.
    let (derived, via_serde) = (
        stateify::to_vec(&p).unwrap(),
        stateify::to_vec(&Serde(p.clone())).unwrap(),
    );
    let hist_at = derived.len() - 9; // after the 10-byte header
    assert_eq!(derived[10..hist_at], via_serde[10..via_serde.len() - 5]);
    assert_eq!(derived[hist_at..], [0x13, 2, 3, 1, 0, 2, 0, 3, 0]);
    assert_eq!(via_serde[hist_at..], [0x0c, 3, 0x81, 0x82, 0x83]);
    // Either encoding loads as the other.
    let derived = stateify::to_vec(&p).unwrap();
    let via_serde = stateify::to_vec(&Serde(p.clone())).unwrap();
    assert_eq!(stateify::from_slice::<Serde<Point>>(&derived).unwrap().0, p);
    assert_eq!(stateify::from_slice::<Point>(&via_serde).unwrap(), p);
    let shapes = vec![Shape::Dot, Shape::Circle(5), Shape::Rect { w: 2, h: 3 }];
    let derived = stateify::to_vec(&shapes).unwrap();
    let via_serde = stateify::to_vec(&Serde(shapes.clone())).unwrap();
    assert_eq!(
        stateify::from_slice::<Serde<Vec<Shape>>>(&derived)
            .unwrap()
            .0,
        shapes
    );
    assert_eq!(
        stateify::from_slice::<Vec<Shape>>(&via_serde).unwrap(),
        shapes
    );
}

// ---- evolution ----------------------------------------------------------

mod v1 {
    #[derive(serde::Serialize, serde::Deserialize)]
    pub struct Account {
        pub user: String,
        pub old_limit: u32,
        pub legacy: bool,
    }
}

mod v2 {
    #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    pub struct Account {
        pub user: String,
        #[serde(alias = "old_limit")]
        pub limit: u64,
        #[serde(default)]
        pub email: Option<String>,
    }
}

#[derive(Stateify)]
#[state(type_name = "Bank")]
struct BankV1 {
    #[state(serde)]
    accounts: Vec<v1::Account>,
}

#[derive(Stateify)]
#[state(type_name = "Bank")]
struct BankV2 {
    #[state(serde)]
    accounts: Vec<v2::Account>,
}

#[test]
fn serde_structs_evolve_by_field_name() {
    let old = BankV1 {
        accounts: vec![v1::Account {
            user: "ann".into(),
            old_limit: 500,
            legacy: true,
        }],
    };
    let bytes = stateify::to_vec(&old).unwrap();
    let new: BankV2 = stateify::from_slice(&bytes).unwrap();
    assert_eq!(
        new.accounts,
        vec![v2::Account {
            user: "ann".into(),
            limit: 500,
            email: None,
        }]
    );
    // The reverse lacks `old_limit`: a clear error with the path.
    let bytes = stateify::to_vec(&new).unwrap();
    let err = stateify::from_slice::<BankV1>(&bytes).err().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("root.accounts[0]"), "{msg}");
    assert!(msg.contains("missing field `old_limit`"), "{msg}");
}

// ---- errors -------------------------------------------------------------

struct Refuses;
impl Serialize for Refuses {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("not today"))
    }
}
impl<'de> Deserialize<'de> for Refuses {
    fn deserialize<D: serde::Deserializer<'de>>(_: D) -> Result<Self, D::Error> {
        Err(serde::de::Error::custom("never"))
    }
}

#[derive(Serialize)]
struct Outer {
    name: &'static str,
    inner: Vec<Refuses>,
}

/// Saves a serde value that has no `Deserialize` (so no `Serde<T>`).
fn save_only<T: Serialize>(v: T) -> Result<Vec<u8>, stateify::Error> {
    struct Root<T>(T);
    impl<T: Serialize> Stateify for Root<T> {
        fn save(&self, s: &mut stateify::Saver) -> Result<(), stateify::Error> {
            stateify::serde::save(&self.0, s)
        }
        fn load(_: &mut stateify::Loader) -> Result<Self, stateify::Error> {
            Err(stateify::Error::custom("save only"))
        }
    }
    stateify::to_vec(&Root(v))
}

#[test]
fn serialize_errors_carry_the_path() {
    let err = save_only(Outer {
        name: "x",
        inner: vec![Refuses],
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "root.inner[0]: not today");
}

#[derive(Stateify)]
#[state(type_name = "Site")]
struct SiteText {
    home: String,
}

#[derive(Stateify, Debug)]
#[state(type_name = "Site")]
struct SiteUrl {
    #[state(serde)]
    #[allow(dead_code)]
    home: url::Url,
}

#[test]
fn deserialize_errors_carry_the_path_and_offset() {
    let bytes = stateify::to_vec(&SiteText {
        home: "not a url".into(),
    })
    .unwrap();
    let err = stateify::from_slice::<SiteUrl>(&bytes).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("root.home: "), "{msg}");
    assert!(msg.contains("relative URL without a base"), "{msg}");
    assert!(err.offset().is_some(), "{msg}");
    // Inside a serde struct, the path names the serde field too (its name
    // is looked up again only when its value fails).
    #[derive(Serialize, Deserialize)]
    #[serde(rename = "Conf")]
    struct ConfText {
        port: u16,
        site: String,
    }
    #[derive(Serialize, Deserialize, Debug)]
    struct Conf {
        #[allow(dead_code)]
        port: u16,
        #[allow(dead_code)]
        site: url::Url,
    }
    let bytes = stateify::to_vec(&Serde(vec![ConfText {
        port: 1,
        site: "not a url".into(),
    }]))
    .unwrap();
    let err = stateify::from_slice::<Serde<Vec<Conf>>>(&bytes).unwrap_err();
    let msg = err.to_string();
    assert!(msg.starts_with("root[0].site: "), "{msg}");
    assert!(msg.contains("relative URL without a base"), "{msg}");
    // Shared objects have no serde form.
    let shared = stateify::to_vec(&std::rc::Rc::new(5u32)).unwrap();
    let msg = stateify::from_slice::<Serde<u32>>(&shared)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no serde form"), "{msg}");
}

/// A Serialize impl that names a different field list on every run.
struct Restless(std::cell::Cell<u32>);
impl Serialize for Restless {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let n = self.0.get();
        self.0.set(n + 1);
        let mut st = s.serialize_struct("Restless", 1)?;
        st.serialize_field(["a", "b"][n as usize % 2], &n)?;
        st.end()
    }
}

#[test]
fn a_serialize_that_changes_its_fields_every_run_is_an_error() {
    let err = save_only(Restless(0.into())).unwrap_err();
    assert!(
        err.to_string()
            .contains("Serialize impl of `Restless` names different fields each time"),
        "{err}"
    );
}

/// A struct whose field list depends on its value: no fields, `a`, `a b`,
/// `b`, `a` under a name equal to the learned one at another address, `ab`,
/// or `a` at the address of `ab`.
#[derive(Clone, Copy)]
struct Shifting(u8);
impl Serialize for Shifting {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let fields: &[&'static str] = match self.0 {
            0 => &[],
            1 => &["a"],
            2 => &["a", "b"],
            3 => &["b"],
            4 => &[ELSEWHERE_A.get_or_init(|| String::from("a").leak())],
            5 => &[AB],
            _ => &[AB.split_at(1).0],
        };
        let mut st = s.serialize_struct("Loose", fields.len())?;
        for (i, f) in fields.iter().enumerate() {
            st.serialize_field(f, &(u32::from(self.0) * 10 + i as u32))?;
        }
        st.end()
    }
}
static ELSEWHERE_A: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
static AB: &str = "ab";

#[derive(Serialize, Deserialize, Debug, PartialEq)]
struct Loose {
    #[serde(default)]
    a: Option<u32>,
    #[serde(default)]
    b: Option<u32>,
    #[serde(default)]
    ab: Option<u32>,
}

#[test]
fn field_lists_that_change_between_values_are_relearned() {
    // Every layout after each other one, twice: the learned list is left
    // early, late, at once, never entered, matched by content at another
    // address, and not matched by a shorter name at the same address.
    let modes: Vec<u8> = (0..7u8)
        .flat_map(|a| (0..7u8).map(move |b| [a, b]))
        .flatten()
        .collect();
    let values: Vec<Shifting> = modes.iter().map(|&m| Shifting(m)).collect();
    let want: Vec<Loose> = modes
        .iter()
        .map(|&m| {
            let v = |i: u32| Some(u32::from(m) * 10 + i);
            let (a, b, ab) = match m {
                0 => (None, None, None),
                1 | 4 | 6 => (v(0), None, None),
                2 => (v(0), v(1), None),
                3 => (None, v(0), None),
                _ => (None, None, v(0)),
            };
            Loose { a, b, ab }
        })
        .collect();
    for _ in 0..2 {
        let bytes = save_only(&values).unwrap();
        let got = stateify::from_slice::<Serde<Vec<Loose>>>(&bytes).unwrap().0;
        assert_eq!(got, want);
        // The bytes do not depend on what earlier saves learned.
        assert_eq!(save_only(&values).unwrap(), bytes);
    }
}

// ---- postcard -----------------------------------------------------------

#[derive(Stateify, Debug, PartialEq)]
struct Packed {
    #[state(postcard)]
    table: BTreeMap<String, (u32, Vec<i64>)>,
    #[state(postcard)]
    id: uuid::Uuid,
}

/// A sequence whose `Serialize` does not know its length up front (a
/// filtered iterator): the count is put in front of the elements at the end.
#[derive(Deserialize, Debug, PartialEq)]
#[serde(transparent)]
struct Evens(Vec<u32>);

impl Serialize for Evens {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.iter().filter(|v| *v % 2 == 0))
    }
}

#[test]
fn sequences_of_unknown_length_get_their_count_at_the_end() {
    // 3 and 300 elements kept: a count of one byte and of two.
    for n in [6u32, 600] {
        let all = Evens((0..n).collect());
        let back = round(&Serde(all)).0;
        assert_eq!(back, Evens((0..n).filter(|v| v % 2 == 0).collect()));
    }
}

#[test]
fn postcard_fields_round_trip_as_opaque_bytes() {
    let p = Packed {
        table: [
            ("a".to_string(), (1, vec![-1, 2])),
            ("b".into(), (2, vec![])),
        ]
        .into(),
        id: uuid::Uuid::from_u128(7),
    };
    let bytes = stateify::to_vec(&p).unwrap();
    assert_eq!(stateify::from_slice::<Packed>(&bytes).unwrap(), p);
    insta::assert_snapshot!(stateify::pretty::to_string(&bytes).unwrap());
}

#[test]
fn postcard_bytes_that_do_not_decode_are_an_error() {
    #[derive(Stateify)]
    #[state(type_name = "Packed")]
    struct Raw {
        table: Vec<u8>,
        id: Vec<u8>,
    }
    let bytes = stateify::to_vec(&Raw {
        table: vec![5, 1],
        id: vec![1, 2, 3],
    })
    .unwrap();
    let msg = stateify::from_slice::<Packed>(&bytes)
        .unwrap_err()
        .to_string();
    assert!(msg.starts_with("root.table: postcard: "), "{msg}");
    // Trailing bytes after a complete value are refused too.
    let bytes = stateify::to_vec(&Raw {
        table: vec![0, 9],
        id: vec![],
    })
    .unwrap();
    let msg = stateify::from_slice::<Packed>(&bytes)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("1 bytes after the postcard value"), "{msg}");
}

// ---- hostile input --------------------------------------------------------

#[test]
fn every_prefix_and_byte_flip_fails_cleanly() {
    let h = Holder {
        configs: (0..3).map(config).collect(),
        plain: vec![Serde(config(4))],
    };
    let bytes = stateify::to_vec(&h).unwrap();
    for n in 0..bytes.len() {
        assert!(stateify::from_slice::<Holder>(&bytes[..n]).is_err());
    }
    let mut flipped = bytes.clone();
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80, 0xff] {
            flipped[i] ^= bit;
            let _ = stateify::from_slice::<Holder>(&flipped);
            let _ = stateify::from_slice::<Serde<serde_json::Value>>(&flipped);
            flipped[i] ^= bit;
        }
    }
}

#[test]
fn deep_serde_sequences_save_on_a_small_stack() {
    // Nesting only through sequences, deeper than a 256 KiB stack holds:
    // the save moves to new stack segments as it goes.
    // (Loads refuse owned values nested past 10,000 levels by default.)
    let depth = 8_000;
    let mut v = serde_json::Value::from(7);
    for _ in 0..depth {
        v = serde_json::Value::Array(vec![v, serde_json::Value::Bool(true)]);
    }
    let v = std::sync::Arc::new(v);
    let bytes = {
        let v = v.clone();
        std::thread::Builder::new()
            .stack_size(256 << 10)
            .spawn(move || save_only(&*v))
            .unwrap()
            .join()
            .unwrap()
            .unwrap()
    };
    // Read back and walked without recursion (serde_json's own drop and
    // comparison recurse as deep as the value).
    let back = stateify::from_slice::<Serde<serde_json::Value>>(&bytes)
        .unwrap()
        .0;
    let mut levels = 0;
    let mut at = &back;
    while let serde_json::Value::Array(items) = at {
        assert_eq!(items.len(), 2);
        assert_eq!(items[1], serde_json::Value::Bool(true));
        at = &items[0];
        levels += 1;
    }
    assert_eq!((levels, at), (depth, &serde_json::Value::from(7)));
    // Both values are dropped on a stack deep enough for serde_json's
    // recursive drop.
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(move || drop((v, back)))
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn deep_nesting_through_serde_is_refused_not_overflowed() {
    // 200 000 nested sequences, read as a serde_json::Value.
    let depth = 200_000;
    let mut body = vec![1u8];
    for _ in 0..depth {
        body.extend_from_slice(&[0x0c, 0x01]);
    }
    body.push(0x0c);
    body.push(0x00);
    let mut rec = Vec::new();
    stateify::write_header(&mut rec, body.len() as u64, true).unwrap();
    rec.extend_from_slice(&body);
    let err = stateify::from_slice::<Serde<serde_json::Value>>(&rec).unwrap_err();
    assert!(err.to_string().contains("nested deeper than"), "{err}");
}

#[test]
fn claimed_counts_do_not_preallocate_past_the_budget() {
    // A map claiming as many entries as there are bytes left, nested:
    // each level's hint draws on one budget for the whole load.
    let mut body = vec![1u8];
    for _ in 0..10_000 {
        body.extend_from_slice(&[0x0c, 0xff, 0xff, 0x03]);
    }
    body.resize(body.len() + 70_000, 0x00);
    let mut rec = Vec::new();
    stateify::write_header(&mut rec, body.len() as u64, true).unwrap();
    rec.extend_from_slice(&body);
    assert!(stateify::from_slice::<Serde<serde_json::Value>>(&rec).is_err());
}

#[derive(Serialize, Deserialize, Debug)]
enum Tree {
    Node(Vec<Tree>),
    Leaf,
}

#[derive(Stateify, Debug)]
#[state(type_name = "Forest")]
struct Forest {
    #[state(postcard)]
    #[allow(dead_code)]
    tree: Tree,
}

#[test]
fn hostile_postcard_bytes_are_bounded_by_the_load() {
    #[derive(Stateify)]
    #[state(type_name = "Forest")]
    struct Raw {
        tree: Vec<u8>,
    }
    // Each level: variant Node, then a length claiming ~2 million children,
    // of which the first is the next level. Without limits every level
    // would preallocate serde's maximum (1 MiB) while recursing deeper.
    let mut tree = Vec::new();
    for _ in 0..200_000 {
        tree.extend_from_slice(&[0x00, 0xff, 0xff, 0x7f]);
    }
    let bytes = stateify::to_vec(&Raw { tree }).unwrap();
    let msg = stateify::from_slice::<Forest>(&bytes)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("nested deeper than"), "{msg}");
    // A deep but honest tree within the limits loads.
    let mut t = Tree::Leaf;
    for _ in 0..1000 {
        t = Tree::Node(vec![t]);
    }
    let back: Forest = round(&Forest { tree: t });
    let mut depth = 0;
    let mut cur = &back.tree;
    while let Tree::Node(kids) = cur {
        depth += 1;
        cur = &kids[0];
    }
    assert_eq!(depth, 1000);
}
