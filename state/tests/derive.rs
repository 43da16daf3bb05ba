//! `#[derive(Stateify)]`: shapes (named, tuple, unit structs; enums with
//! unit, tuple and struct variants; generics) and attributes.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::{Rc, Weak};

use stateify::{AfterLoad, BeforeSave, Error, LoadContext, Stateify};

#[derive(Stateify, Debug, PartialEq, Clone)]
struct Named {
    a: u32,
    b: String,
    r#type: Vec<i64>,
}

#[derive(Stateify, Debug, PartialEq)]
struct Tuple(u8, String);

#[derive(Stateify, Debug, PartialEq)]
struct Unit;

#[derive(Stateify, Debug, PartialEq)]
enum Shape {
    Empty,
    Circle(f64),
    Pair(u8, u8),
    Rect { w: u32, h: u32 },
}

#[derive(Stateify, Debug, PartialEq)]
struct Generic<T, U> {
    items: Vec<T>,
    extra: Option<U>,
}

fn rt<T: Stateify + PartialEq + std::fmt::Debug>(v: &T) -> T {
    let bytes = stateify::to_vec(v).unwrap();
    let back: T = stateify::from_slice(&bytes).unwrap();
    assert_eq!(&back, v);
    for cut in [bytes.len() / 2, bytes.len() - 1] {
        assert!(stateify::from_slice::<T>(&bytes[..cut]).is_err());
    }
    back
}

#[test]
fn shapes_round_trip() {
    rt(&Named {
        a: 1,
        b: "b".into(),
        r#type: vec![-1, 2],
    });
    rt(&Tuple(3, "t".into()));
    rt(&Unit);
    rt(&vec![
        Shape::Empty,
        Shape::Circle(1.5),
        Shape::Pair(1, 2),
        Shape::Rect { w: 3, h: 4 },
    ]);
    rt(&Generic::<u16, String> {
        items: vec![1, 2],
        extra: Some("x".into()),
    });
    let text = stateify::pretty::to_string(&stateify::to_vec(&Shape::Rect { w: 3, h: 4 }).unwrap())
        .unwrap();
    // The variant's payload struct does not repeat the variant's name.
    assert!(text.contains("Shape::Rect {\n  w: 3,"), "{text}");
    let text = stateify::pretty::to_string(&stateify::to_vec(&Shape::Pair(1, 2)).unwrap()).unwrap();
    assert!(text.contains("Shape::Pair(\n  1,\n  2,\n)"), "{text}");
    let text =
        stateify::pretty::to_string(&stateify::to_vec(&Shape::Circle(1.5)).unwrap()).unwrap();
    assert!(text.contains(": Shape::Circle(1.5)\n"), "{text}");
    let text = stateify::pretty::to_string(
        &stateify::to_vec(&Named {
            a: 1,
            b: "b".into(),
            r#type: vec![],
        })
        .unwrap(),
    )
    .unwrap();
    assert!(
        text.contains("  type: [i64; 0]") && !text.contains("r#"),
        "raw identifiers lose their r#: {text}"
    );
}

fn seven() -> u32 {
    7
}

#[derive(Stateify, Debug, PartialEq)]
#[state(type_name = "Conn", after_load)]
struct ConnV2 {
    #[state(rename = "peer_name", alias = "peer")]
    peer: String,
    #[state(default = "seven")]
    mtu: u32,
    #[state(default)]
    flags: Vec<u8>,
    #[state(nosave)]
    cache: HashMap<String, u32>,
    #[state(with = "as_text")]
    port: u16,
}

impl AfterLoad for ConnV2 {
    fn after_load(&mut self, _: &mut LoadContext) -> Result<(), Error> {
        self.cache.insert(self.peer.clone(), self.port as u32);
        Ok(())
    }
}

/// Saves a u16 as its decimal text.
mod as_text {
    pub fn save(v: &u16, s: &mut stateify::Saver) -> Result<(), stateify::Error> {
        s.write_str(&v.to_string());
        Ok(())
    }
    pub fn load(l: &mut stateify::Loader) -> Result<u16, stateify::Error> {
        let t = l.read_str()?;
        t.parse().map_err(stateify::Error::custom)
    }
}

#[derive(Stateify)]
#[state(type_name = "Conn")]
struct ConnV1 {
    peer: String,
    #[state(with = "as_text")]
    port: u16,
}

#[test]
fn attributes_evolution_and_hooks() {
    let v2 = ConnV2 {
        peer: "p".into(),
        mtu: 1500,
        flags: vec![1],
        cache: HashMap::from([("junk".into(), 1)]),
        port: 80,
    };
    let bytes = stateify::to_vec(&v2).unwrap();
    let text = stateify::pretty::to_string(&bytes).unwrap();
    assert!(
        text.contains("peer_name: \"p\"")
            && text.contains("port: \"80\"")
            && !text.contains("cache"),
        "{text}"
    );
    let back: ConnV2 = stateify::from_slice(&bytes).unwrap();
    assert_eq!(
        back.cache,
        HashMap::from([("p".to_string(), 80)]),
        "nosave comes back from after_load"
    );
    assert_eq!((back.mtu, back.flags.clone()), (1500, vec![1]));

    // An old stream: `peer` under its old name, no mtu/flags.
    let old = stateify::to_vec(&ConnV1 {
        peer: "q".into(),
        port: 22,
    })
    .unwrap();
    let back: ConnV2 = stateify::from_slice(&old).unwrap();
    assert_eq!(
        (back.peer.as_str(), back.mtu, back.flags.len(), back.port),
        ("q", 7, 0, 22)
    );
}

#[derive(Stateify, Debug, PartialEq)]
#[state(type_name = "Conn", ignore_unknown)]
struct Minimal {
    port: String,
}

#[derive(Stateify, Debug, PartialEq)]
#[state(type_name = "Conn")]
struct Strict {
    port: String,
}

#[test]
fn unknown_fields_error_or_are_ignored() {
    let bytes = stateify::to_vec(&ConnV1 {
        peer: "q".into(),
        port: 22,
    })
    .unwrap();
    assert_eq!(
        stateify::from_slice::<Minimal>(&bytes).unwrap(),
        Minimal { port: "22".into() }
    );
    let err = stateify::from_slice::<Strict>(&bytes).unwrap_err();
    assert!(
        err.to_string()
            .contains("the stream's `Conn` has a field `peer` the type lacks"),
        "{err}"
    );
}

#[derive(Stateify, Debug)]
#[state(before_save, after_load = "relink")]
struct Parent {
    name: String,
    kids: Vec<Rc<RefCell<Kid>>>,
    #[state(nosave)]
    kid_count: usize,
}

#[derive(Stateify, Debug)]
struct Kid {
    parent: Weak<RefCell<Parent>>,
}

impl BeforeSave for Parent {
    fn before_save(&self) -> Result<(), Error> {
        if self.name.is_empty() {
            return Err(Error::custom("unnamed parent"));
        }
        Ok(())
    }
}

fn relink(p: &mut Parent, _: &mut LoadContext) -> Result<(), Error> {
    p.kid_count = p.kids.len();
    Ok(())
}

#[test]
fn hooks_and_cycles_through_the_derive() {
    let p = Rc::new(RefCell::new(Parent {
        name: "p".into(),
        kids: vec![],
        kid_count: 0,
    }));
    for _ in 0..3 {
        let k = Rc::new(RefCell::new(Kid {
            parent: Rc::downgrade(&p),
        }));
        p.borrow_mut().kids.push(k);
    }
    let back: Rc<RefCell<Parent>> = stateify::from_slice(&stateify::to_vec(&p).unwrap()).unwrap();
    assert_eq!(back.borrow().kid_count, 3);
    for k in &back.borrow().kids {
        assert!(Rc::ptr_eq(&k.borrow().parent.upgrade().unwrap(), &back));
    }
    p.borrow_mut().name.clear();
    let err = stateify::to_vec(&p).unwrap_err();
    assert_eq!(err.to_string(), "root: unnamed parent");
    p.borrow_mut().kids.clear();
}

#[derive(Stateify, Debug, PartialEq)]
#[state(bound = "T: Stateify + Clone")]
struct Bounded<T> {
    v: T,
}

#[test]
fn explicit_bounds() {
    rt(&Bounded { v: 5u8 });
}

/// A stand-in for a runtime handle (a socket, a thread): not saveable.
#[derive(Debug, Default)]
struct Handle(Option<u16>);

/// What the restoring process lends to hooks: a "socket factory".
struct Sockets {
    opened: Vec<u16>,
}

#[derive(Stateify, Debug)]
#[state(after_load)]
struct Listener {
    port: u16,
    backlog: Vec<String>,
    #[state(nosave)]
    handle: Handle,
}

impl AfterLoad for Listener {
    fn after_load(&mut self, cx: &mut LoadContext) -> Result<(), Error> {
        let sockets = cx
            .resource_mut::<Sockets>()
            .ok_or_else(|| Error::custom("no socket factory in Resources"))?;
        sockets.opened.push(self.port);
        self.handle = Handle(Some(self.port));
        Ok(())
    }
}

#[test]
fn nosave_handle_rebuilt_from_resources() {
    let ls = vec![
        Listener {
            port: 80,
            backlog: vec!["a".into()],
            handle: Handle(Some(80)),
        },
        Listener {
            port: 443,
            backlog: vec![],
            handle: Handle(Some(443)),
        },
    ];
    let bytes = stateify::to_vec(&ls).unwrap();
    let mut res = stateify::Resources::new();
    res.insert(Sockets { opened: vec![] });
    let back: Vec<Listener> = stateify::load_with(&bytes[..], &mut res).unwrap();
    assert_eq!(res.get::<Sockets>().unwrap().opened, vec![80, 443]);
    assert_eq!(back[1].handle.0, Some(443));
    assert_eq!(back[0].backlog, vec!["a".to_string()]);
    let err = stateify::from_slice::<Vec<Listener>>(&bytes).unwrap_err();
    assert_eq!(err.to_string(), "root[0]: no socket factory in Resources");
}

/// A monotonic clock the restoring process provides (fake in tests).
struct Clock {
    now: std::time::Duration,
}

#[derive(Stateify, Debug)]
#[state(before_save, after_load)]
struct Timer {
    /// Saved: time left until it fires, relative to the saving process's clock.
    remaining: std::cell::Cell<std::time::Duration>,
    /// Not saved: the absolute deadline on this process's clock.
    #[state(nosave)]
    deadline: std::time::Duration,
    #[state(nosave)]
    saved_at: std::time::Duration,
}

impl BeforeSave for Timer {
    fn before_save(&self) -> Result<(), Error> {
        self.remaining
            .set(self.deadline.saturating_sub(self.saved_at));
        Ok(())
    }
}

impl AfterLoad for Timer {
    fn after_load(&mut self, cx: &mut LoadContext) -> Result<(), Error> {
        let now = cx
            .resource::<Clock>()
            .ok_or_else(|| Error::custom("no clock"))?
            .now;
        self.deadline = now + self.remaining.get();
        Ok(())
    }
}

#[test]
fn timer_rearms_from_remaining_duration() {
    use std::time::Duration;
    let t = Timer {
        remaining: Default::default(),
        deadline: Duration::from_secs(105),
        saved_at: Duration::from_secs(100),
    };
    let bytes = stateify::to_vec(&t).unwrap();
    let mut res = stateify::Resources::new();
    res.insert(Clock {
        now: Duration::from_secs(7),
    });
    let back: Timer = stateify::load_with(&bytes[..], &mut res).unwrap();
    assert_eq!(
        back.deadline,
        Duration::from_secs(12),
        "5 s left, re-armed on the new clock"
    );
}

/// The runtime under another name, as when a user renames the dependency.
mod renamed {
    pub use stateify as st;
}

#[derive(Debug, PartialEq, renamed::st::Stateify)]
#[state(crate = "renamed::st")]
struct ThroughRenamedCrate {
    v: Vec<u8>,
}

#[test]
fn crate_attribute_points_at_a_renamed_runtime() {
    rt(&ThroughRenamedCrate { v: vec![1, 2] });
}

/// More struct and enum types than the saver's type-id cache has slots,
/// alternating, so slots are evicted and shared; every value must still
/// come back under its own type (a wrong cached id would fail the name
/// check on load) and the bytes must not depend on the cache.
#[test]
fn many_alternating_types_keep_their_ids() {
    macro_rules! types {
        ($($s:ident $e:ident),*) => {
            $(
                #[derive(Stateify, Debug, PartialEq, Clone)]
                struct $s { v: u32 }
                #[derive(Stateify, Debug, PartialEq, Clone)]
                enum $e { A, B(u8) }
            )*
            #[derive(Stateify, Debug, PartialEq, Clone)]
            #[allow(non_snake_case)]
            struct All { $( $s: $s, $e: $e, )* }
            fn all(i: u32) -> All {
                All { $( $s: $s { v: i }, $e: if i % 2 == 0 { $e::A } else { $e::B(i as u8) }, )* }
            }
        };
    }
    types!(
        S0 E0, S1 E1, S2 E2, S3 E3, S4 E4, S5 E5, S6 E6, S7 E7, S8 E8, S9 E9,
        S10 E10, S11 E11, S12 E12, S13 E13, S14 E14, S15 E15, S16 E16, S17 E17,
        S18 E18, S19 E19, S20 E20, S21 E21, S22 E22, S23 E23, S24 E24, S25 E25,
        S26 E26, S27 E27, S28 E28, S29 E29, S30 E30, S31 E31, S32 E32, S33 E33,
        S34 E34, S35 E35, S36 E36, S37 E37, S38 E38, S39 E39
    );
    let v: Vec<All> = (0..5).map(all).collect();
    let bytes = stateify::to_vec(&v).unwrap();
    assert_eq!(bytes, stateify::to_vec(&v).unwrap());
    let back: Vec<All> = stateify::from_slice(&bytes).unwrap();
    assert_eq!(back, v);
    let text = stateify::pretty::to_string(&bytes).unwrap();
    assert!(text.contains("S39 {") && text.contains("E17::B("), "{text}");
}
