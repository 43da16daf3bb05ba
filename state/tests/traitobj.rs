//! Trait objects through `register_dyn!`: Box, Rc and Arc (sharing kept),
//! unregistered types and unknown names are errors.

use std::rc::Rc;
use std::sync::Arc;

use stateify::{AsAny, Stateify};

trait File: AsAny {
    fn describe(&self) -> String;
}

#[derive(Stateify, Debug)]
struct Pipe {
    buffered: Vec<u8>,
}

#[derive(Stateify, Debug)]
struct Socket {
    port: u16,
}

struct Unregistered;

impl File for Pipe {
    fn describe(&self) -> String {
        format!("pipe with {} bytes", self.buffered.len())
    }
}
impl File for Socket {
    fn describe(&self) -> String {
        format!("socket on {}", self.port)
    }
}
impl File for Unregistered {
    fn describe(&self) -> String {
        "?".into()
    }
}

stateify::register_dyn!(dyn File { "Pipe" => Pipe, "Socket" => Socket });

#[derive(Stateify)]
struct FdTable {
    boxed: Vec<Box<dyn File>>,
    shared: Vec<Rc<dyn File>>,
}

#[test]
fn boxes_and_rcs_of_trait_objects() {
    let sock: Rc<dyn File> = Rc::new(Socket { port: 80 });
    let t = FdTable {
        boxed: vec![
            Box::new(Pipe {
                buffered: vec![1, 2, 3],
            }),
            Box::new(Socket { port: 22 }),
        ],
        shared: vec![sock.clone(), sock, Rc::new(Pipe { buffered: vec![] })],
    };
    let mut bytes = Vec::new();
    let saved = stateify::save(&mut bytes, &t).unwrap();
    let (back, loaded): (FdTable, _) = stateify::from_slice_with_options(
        &bytes,
        &mut stateify::Resources::new(),
        &Default::default(),
    )
    .unwrap();
    // Each type once in the statistics: a trait object's name is not a row
    // of its own beside its concrete type of the same name.
    for st in [&saved, &loaded] {
        let names: Vec<(&str, u64)> = st
            .types
            .iter()
            .map(|t| (t.name.as_str(), t.count))
            .collect();
        assert_eq!(names, [("FdTable", 1), ("Pipe", 2), ("Socket", 2)], "{st}");
    }
    let d: Vec<String> = back.boxed.iter().map(|f| f.describe()).collect();
    assert_eq!(d, ["pipe with 3 bytes", "socket on 22"]);
    assert!(Rc::ptr_eq(&back.shared[0], &back.shared[1]));
    assert_eq!(back.shared[2].describe(), "pipe with 0 bytes");
    let text = stateify::pretty::to_string(&bytes).unwrap();
    assert!(text.contains("dyn Socket {"), "{text}");
    for cut in [bytes.len() / 2, bytes.len() - 1] {
        assert!(stateify::from_slice::<FdTable>(&bytes[..cut]).is_err());
    }
}

#[test]
fn arcs_of_trait_objects() {
    let a: Arc<dyn File> = Arc::new(Socket { port: 1 });
    let bytes = stateify::to_vec(&(a.clone(), a)).unwrap();
    let back: (Arc<dyn File>, Arc<dyn File>) = stateify::from_slice(&bytes).unwrap();
    assert!(Arc::ptr_eq(&back.0, &back.1));
}

#[test]
fn unregistered_types_and_unknown_names_are_errors() {
    let b: Box<dyn File> = Box::new(Unregistered);
    let err = stateify::to_vec(&vec![b]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("root[0]: a `dyn File` of a type missing"),
        "{err}"
    );

    let mut bytes = stateify::to_vec(&vec![Box::new(Socket { port: 9 }) as Box<dyn File>]).unwrap();
    let pos = bytes.windows(6).position(|w| w == b"Socket").unwrap();
    bytes[pos..pos + 6].copy_from_slice(b"Sucket");
    let Err(err) = stateify::from_slice::<Vec<Box<dyn File>>>(&bytes) else {
        panic!("an unknown name must not load");
    };
    assert!(
        err.to_string()
            .contains("`Sucket` is not registered for `dyn File`"),
        "{err}"
    );
}
