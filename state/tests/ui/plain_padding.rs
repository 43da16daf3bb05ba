use stateify::Stateify;

// u8 then u32: three bytes of padding, which a byte copy would expose.
#[derive(Stateify)]
#[state(plain)]
struct Padded {
    tag: u8,
    value: u32,
}

// A String is not a number.
#[derive(Stateify)]
#[state(plain)]
struct Named {
    id: u32,
    name: String,
}

fn main() {}
