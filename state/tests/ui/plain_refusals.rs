use stateify::Stateify;

#[derive(Stateify)]
#[state(plain)]
enum Shape {
    Dot,
}

#[derive(Stateify)]
#[state(plain, after_load)]
struct Hooked {
    x: u32,
}

#[derive(Stateify)]
#[state(plain)]
struct Generic<T> {
    x: T,
}

#[derive(Stateify)]
#[state(plain)]
struct Skipping {
    #[state(nosave)]
    cache: u32,
    x: u32,
}

fn main() {}
