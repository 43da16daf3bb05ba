//! Hook ordering (DESIGN §4): `before_save` once per object before its
//! fields; `after_load` after a value's fields (children first) and before it
//! is shared; deferred closures after the whole graph, in registration order,
//! with `Weak`s upgradable and `Resources` reachable.

use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};

use stateify::{AfterLoad, BeforeSave, Error, LoadContext, Loader, Resources, Saver, Stateify};

/// The order hooks ran in, shared through `Resources`.
#[derive(Default)]
struct Log(Vec<String>);

#[derive(Debug)]
struct Node {
    name: String,
    kids: Vec<Rc<RefCell<Node>>>,
    parent: Weak<RefCell<Node>>,
    /// Not saved: rebuilt by after_load (a "nosave" counter).
    descendants: usize,
}

const FIELDS: &[&str] = &["name", "kids", "parent"];

thread_local! {
    static BEFORE_SAVE: Cell<usize> = const { Cell::new(0) };
}

impl BeforeSave for Node {
    fn before_save(&self) -> Result<(), Error> {
        BEFORE_SAVE.with(|c| c.set(c.get() + 1));
        if self.name == "refuse" {
            return Err(Error::custom("this node refuses to be saved"));
        }
        Ok(())
    }
}

impl AfterLoad for Node {
    fn after_load(&mut self, cx: &mut LoadContext) -> Result<(), Error> {
        // Children are complete: their counters are already rebuilt.
        self.descendants = self.kids.iter().map(|k| 1 + k.borrow().descendants).sum();
        // Not shared yet: the weak parent cannot be upgraded during the graph build
        // when the parent is still being built.
        let log = cx
            .resource_mut::<Log>()
            .ok_or_else(|| Error::custom("no log"))?;
        log.0.push(format!("after_load {}", self.name));
        if self.name == "fail" {
            return Err(Error::custom("hook failed"));
        }
        let name = self.name.clone();
        let parent = self.parent.clone();
        cx.defer(move |cx| {
            let up = parent.upgrade().map(|p| p.borrow().name.clone());
            let log = cx
                .resource_mut::<Log>()
                .ok_or_else(|| Error::custom("no log"))?;
            log.0.push(format!("deferred {name} parent={up:?}"));
            Ok(())
        });
        Ok(())
    }
}

impl Stateify for Node {
    fn save(&self, s: &mut Saver) -> Result<(), Error> {
        self.before_save()?;
        s.save_struct("Node", FIELDS, |s| {
            s.field("name", &self.name)?;
            s.field("kids", &self.kids)?;
            s.field("parent", &self.parent)
        })
    }
    fn load(l: &mut Loader) -> Result<Self, Error> {
        let (mut name, mut kids, mut parent) = (None, None, None);
        let mut n = l.load_struct("Node", FIELDS, |st, l| {
            while let Some(i) = st.next(l)? {
                match i {
                    0 => name = Some(st.value(l)?),
                    1 => kids = Some(st.value(l)?),
                    _ => parent = Some(st.value(l)?),
                }
            }
            Ok(Node {
                name: st.take(name, 0)?,
                kids: st.take(kids, 1)?,
                parent: st.take(parent, 2)?,
                descendants: 0,
            })
        })?;
        n.after_load(l.context())?;
        Ok(n)
    }
}

fn tree(names: &[(&str, &[&str])]) -> Rc<RefCell<Node>> {
    let mk = |name: &str| {
        Rc::new(RefCell::new(Node {
            name: name.into(),
            kids: vec![],
            parent: Weak::new(),
            descendants: 0,
        }))
    };
    let root = mk(names[0].0);
    for (i, (_, kids)) in names.iter().enumerate() {
        let parent = if i == 0 {
            root.clone()
        } else {
            root.borrow().kids[i - 1].clone()
        };
        for k in *kids {
            let kid = mk(k);
            kid.borrow_mut().parent = Rc::downgrade(&parent);
            parent.borrow_mut().kids.push(kid);
        }
    }
    root
}

#[test]
fn hook_order_children_first_then_deferred_in_order() {
    let root = tree(&[("root", &["a", "b"]), ("a", &["a1", "a2"])]);
    BEFORE_SAVE.with(|c| c.set(0));
    let bytes = stateify::to_vec(&root).unwrap();
    assert_eq!(BEFORE_SAVE.with(Cell::get), 5, "once per object");

    let mut res = Resources::new();
    res.insert(Log::default());
    let back: Rc<RefCell<Node>> = stateify::load_with(&bytes[..], &mut res).unwrap();
    assert_eq!(
        back.borrow().descendants,
        4,
        "the unsaved counter is rebuilt"
    );
    let log = res.get::<Log>().unwrap();
    assert_eq!(
        log.0,
        [
            "after_load a1",
            "after_load a2",
            "after_load a",
            "after_load b",
            "after_load root",
            "deferred a1 parent=Some(\"a\")",
            "deferred a2 parent=Some(\"a\")",
            "deferred a parent=Some(\"root\")",
            "deferred b parent=Some(\"root\")",
            "deferred root parent=None",
        ]
    );
}

#[test]
fn hook_errors_carry_the_path() {
    let root = tree(&[("root", &["a", "fail"])]);
    let bytes = stateify::to_vec(&root).unwrap();
    let mut res = Resources::new();
    res.insert(Log::default());
    let err = stateify::load_with::<Rc<RefCell<Node>>, _>(&bytes[..], &mut res).unwrap_err();
    assert_eq!(err.to_string(), "root.kids[1]: hook failed");

    let root = tree(&[("root", &["a", "refuse"])]);
    let err = stateify::to_vec(&root).unwrap_err();
    assert_eq!(
        err.to_string(),
        "root.kids[1]: this node refuses to be saved"
    );
}

#[test]
fn missing_resource_is_an_error_not_a_panic() {
    let root = tree(&[("root", &["a"])]);
    let bytes = stateify::to_vec(&root).unwrap();
    let err = stateify::from_slice::<Rc<RefCell<Node>>>(&bytes).unwrap_err();
    assert!(err.to_string().ends_with("no log"), "{err}");
}

#[test]
fn deferred_errors_and_nested_defers() {
    #[derive(Debug)]
    struct D;
    impl Stateify for D {
        fn save(&self, s: &mut Saver) -> Result<(), Error> {
            s.write_unit();
            Ok(())
        }
        fn load(l: &mut Loader) -> Result<Self, Error> {
            l.read_unit()?;
            l.context().defer(|cx| {
                *cx.resource_mut::<u32>().unwrap() += 1;
                cx.defer(|cx| {
                    *cx.resource_mut::<u32>().unwrap() *= 10;
                    Err(Error::custom("second stage failed"))
                });
                Ok(())
            });
            Ok(D)
        }
    }
    let bytes = stateify::to_vec(&D).unwrap();
    let mut res = Resources::new();
    res.insert(1u32);
    let err = stateify::load_with::<D, _>(&bytes[..], &mut res).unwrap_err();
    assert_eq!(*res.get::<u32>().unwrap(), 20, "both stages ran, in order");
    assert_eq!(
        err.to_string(),
        "root.<deferred hook #1>: second stage failed"
    );
}
