use stateify::Stateify;

mod m {
    pub fn save(_: &u32, _: &mut stateify::Saver) -> Result<(), stateify::Error> {
        Ok(())
    }
    pub fn load(_: &mut stateify::Loader) -> Result<u32, stateify::Error> {
        Ok(0)
    }
}

#[derive(Stateify)]
struct S {
    #[state(serde, with = "m")]
    a: u32,
    #[state(serde, postcard)]
    b: u32,
    #[state(postcard, nosave)]
    c: u32,
    #[state(serde = "x")]
    d: u32,
}

fn main() {}
