//! The floor of the savedata load: a decoder written by hand for exactly
//! the bytes `stateify::to_vec` writes for a [`SaveData`], with every check
//! a load of untrusted bytes needs (tags, bounds, shortest varints, integer
//! ranges, UTF-8, each type's definition checked once by name and fields)
//! and nothing generic: no traits, no type table beyond an id per type, no
//! field reordering, no depth limit (these types do not nest), no error
//! paths beyond an offset.
//!
//! It reads one layout only, the one the types have today; any other fails.

use crate::data::{Abilities, Enchantment, Entity, GameType, Item, Player, SaveData};

use stateify::wire::{
    F32, F64, FALSE, GRAPH_VERSION_1, NINT, NONE, SEQ, SMALL, SOME, STR, STRUCT, TRUE, TUPLE, U64,
    UINT, UNIT, VARIANT,
};

/// The types of the data set, with the names and members their
/// definitions must have.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Ty {
    SaveData,
    Player,
    GameType,
    Item,
    Enchantment,
    Abilities,
    Entity,
    EntityItem,
    EntityMob,
}

impl Ty {
    fn def(self) -> (&'static str, &'static [&'static str]) {
        match self {
            Ty::SaveData => ("SaveData", &["players"]),
            Ty::Player => (
                "Player",
                &[
                    "game_type",
                    "previous_game_type",
                    "score",
                    "dimension",
                    "selected_item_slot",
                    "selected_item",
                    "spawn",
                    "pos",
                    "motion",
                    "rotation",
                    "health",
                    "food_level",
                    "xp_level",
                    "inventory",
                    "ender_items",
                    "abilities",
                    "entered_nether",
                    "root_vehicle",
                    "shoulder_entity_left",
                    "seen_credits",
                    "recipes",
                ],
            ),
            Ty::GameType => (
                "GameType",
                &["Survival", "Creative", "Adventure", "Spectator"],
            ),
            Ty::Item => (
                "Item",
                &[
                    "count",
                    "slot",
                    "id",
                    "damage",
                    "enchantments",
                    "display_name",
                ],
            ),
            Ty::Enchantment => ("Enchantment", &["id", "level"]),
            Ty::Abilities => (
                "Abilities",
                &[
                    "walk_speed",
                    "fly_speed",
                    "may_fly",
                    "flying",
                    "invulnerable",
                    "may_build",
                    "instabuild",
                ],
            ),
            Ty::Entity => ("Entity", &["Item", "Mob", "Empty"]),
            Ty::EntityItem => ("Entity::Item", &["age", "item"]),
            Ty::EntityMob => ("Entity::Mob", &["kind", "health", "pos"]),
        }
    }
}

type R<T> = Result<T, String>;

struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
    /// The type of each stream type id defined so far.
    types: Vec<Ty>,
}

/// Decodes one graph record, header included, as `stateify::to_vec`
/// writes it.
pub fn decode(record: &[u8]) -> R<SaveData> {
    let (len, object, head) = stateify::decode_header(record).map_err(|e| e.to_string())?;
    let body = match record.get(head..) {
        Some(body) if object && body.len() as u64 == len => body,
        _ => return Err(format!("not one graph record of {len} bytes")),
    };
    let mut d = Dec {
        b: body,
        pos: 0,
        types: Vec::with_capacity(16),
    };
    if d.byte()? != GRAPH_VERSION_1 {
        return Err("not a version 1 graph".into());
    }
    let v = d.save_data()?;
    if d.pos != d.b.len() {
        return Err(format!("{} bytes after the root", d.b.len() - d.pos));
    }
    Ok(v)
}

impl<'a> Dec<'a> {
    #[cold]
    #[inline(never)]
    fn err<T>(&self, what: &str) -> R<T> {
        Err(format!("{what} at byte {}", self.pos))
    }

    #[inline(always)]
    fn byte(&mut self) -> R<u8> {
        match self.b.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => self.err("end of input"),
        }
    }

    #[inline(always)]
    fn bytes(&mut self, n: usize) -> R<&'a [u8]> {
        match self.b.get(self.pos..self.pos.saturating_add(n)) {
            Some(s) => {
                self.pos += n;
                Ok(s)
            }
            None => self.err("end of input"),
        }
    }

    #[inline(always)]
    fn tag(&mut self, want: u8) -> R<()> {
        if self.byte()? != want {
            self.pos -= 1;
            return self.err(&format!("expected tag {want:#04x}"));
        }
        Ok(())
    }

    #[inline(always)]
    fn varint(&mut self) -> R<u64> {
        match self.b.get(self.pos) {
            Some(&b) if b < 0x80 => {
                self.pos += 1;
                Ok(b as u64)
            }
            _ => self.varint_long(),
        }
    }

    #[inline(never)]
    fn varint_long(&mut self) -> R<u64> {
        let b = self.byte()?;
        let (mut v, mut shift) = ((b & 0x7f) as u64, 7);
        loop {
            let b = self.byte()?;
            if shift == 63 && b > 1 {
                return self.err("varint overflow");
            }
            v |= ((b & 0x7f) as u64) << shift;
            if b < 0x80 {
                if b == 0 {
                    return self.err("varint not in its shortest form");
                }
                return Ok(v);
            }
            shift += 7;
        }
    }

    /// A count of elements each at least one byte long.
    #[inline(always)]
    fn count(&mut self) -> R<usize> {
        let n = self.varint()?;
        if n > (self.b.len() - self.pos) as u64 {
            return self.err("count past the end of input");
        }
        Ok(n as usize)
    }

    #[inline(always)]
    fn uint(&mut self, max: u64) -> R<u64> {
        let t = self.byte()?;
        let v = match t {
            SMALL..=0xff => (t - SMALL) as u64,
            UINT => self.varint()?,
            U64 => u64::from_le_bytes(self.bytes(8)?.try_into().unwrap()),
            _ => return self.err("expected an unsigned integer"),
        };
        if v > max {
            return self.err("integer out of range");
        }
        Ok(v)
    }

    #[inline(always)]
    fn int(&mut self, min: i64, max: i64) -> R<i64> {
        let v = if self.b.get(self.pos) == Some(&NINT) {
            self.pos += 1;
            let n = self.varint()?;
            if n > i64::MAX as u64 {
                return self.err("integer out of range");
            }
            -1 - n as i64
        } else {
            let v = self.uint(u64::MAX)?;
            if v > i64::MAX as u64 {
                return self.err("integer out of range");
            }
            v as i64
        };
        if v < min || v > max {
            return self.err("integer out of range");
        }
        Ok(v)
    }

    #[inline(always)]
    fn f32(&mut self) -> R<f32> {
        self.tag(F32)?;
        Ok(f32::from_le_bytes(self.bytes(4)?.try_into().unwrap()))
    }

    #[inline(always)]
    fn f64(&mut self) -> R<f64> {
        self.tag(F64)?;
        Ok(f64::from_le_bytes(self.bytes(8)?.try_into().unwrap()))
    }

    #[inline(always)]
    fn bool(&mut self) -> R<bool> {
        match self.byte()? {
            FALSE => Ok(false),
            TRUE => Ok(true),
            _ => self.err("expected a bool"),
        }
    }

    #[inline(always)]
    fn name(&mut self) -> R<&'a str> {
        let n = self.varint()?;
        let b = self.bytes(n as usize)?;
        if b.is_ascii() {
            // SAFETY: ASCII bytes are valid UTF-8 (the library's loader
            // takes the same shortcut; `from_utf8` costs ~120 instructions
            // on these short strings).
            return Ok(unsafe { std::str::from_utf8_unchecked(b) });
        }
        std::str::from_utf8(b).or_else(|_| self.err("invalid UTF-8"))
    }

    #[inline(always)]
    fn string(&mut self) -> R<String> {
        self.tag(STR)?;
        self.name().map(str::to_owned)
    }

    #[inline(always)]
    fn option(&mut self) -> R<bool> {
        match self.byte()? {
            NONE => Ok(false),
            SOME => Ok(true),
            _ => self.err("expected an option"),
        }
    }

    #[inline(always)]
    fn tuple(&mut self, n: u64) -> R<()> {
        self.tag(TUPLE)?;
        if self.varint()? != n {
            return self.err("a tuple of another length");
        }
        Ok(())
    }

    /// A type reference of `want`, with its definition at its first use.
    #[inline(always)]
    fn type_ref(&mut self, want: Ty) -> R<()> {
        let id = self.varint()? as usize;
        match self.types.get(id) {
            Some(&t) if t == want => Ok(()),
            Some(t) => self.err(&format!("type {t:?} where {want:?} goes")),
            None if id == self.types.len() => self.definition(want),
            None => self.err("type id not defined"),
        }
    }

    #[cold]
    fn definition(&mut self, want: Ty) -> R<()> {
        let (name, members) = want.def();
        if self.name()? != name {
            return self.err(&format!("expected the definition of {name}"));
        }
        if self.varint()? != members.len() as u64 {
            return self.err(&format!("{name} with another member count"));
        }
        for m in members {
            if self.name()? != *m {
                return self.err(&format!("{name} with other members"));
            }
        }
        self.types.push(want);
        Ok(())
    }

    #[inline(always)]
    fn struct_of(&mut self, want: Ty) -> R<()> {
        self.tag(STRUCT)?;
        self.type_ref(want)
    }

    /// A SEQ header: the element count.
    #[inline(always)]
    fn seq(&mut self) -> R<usize> {
        self.tag(SEQ)?;
        self.count()
    }

    fn save_data(&mut self) -> R<SaveData> {
        self.struct_of(Ty::SaveData)?;
        let n = self.seq()?;
        let mut players = Vec::with_capacity(n);
        for _ in 0..n {
            players.push(self.player()?);
        }
        Ok(SaveData { players })
    }

    fn game_type(&mut self) -> R<GameType> {
        self.tag(VARIANT)?;
        self.type_ref(Ty::GameType)?;
        let v = match self.varint()? {
            0 => GameType::Survival,
            1 => GameType::Creative,
            2 => GameType::Adventure,
            3 => GameType::Spectator,
            _ => return self.err("no such GameType"),
        };
        self.tag(UNIT)?;
        Ok(v)
    }

    fn triple(&mut self) -> R<(f64, f64, f64)> {
        self.tuple(3)?;
        Ok((self.f64()?, self.f64()?, self.f64()?))
    }

    fn items(&mut self) -> R<Vec<Item>> {
        let n = self.seq()?;
        let mut v = Vec::with_capacity(n);
        for _ in 0..n {
            v.push(self.item()?);
        }
        Ok(v)
    }

    fn player(&mut self) -> R<Player> {
        self.struct_of(Ty::Player)?;
        Ok(Player {
            game_type: self.game_type()?,
            previous_game_type: self.game_type()?,
            score: self.uint(u64::MAX)?,
            dimension: self.string()?,
            selected_item_slot: self.uint(u32::MAX as u64)? as u32,
            selected_item: self.item()?,
            spawn: if self.option()? {
                self.tuple(3)?;
                Some((
                    self.int(i64::MIN, i64::MAX)?,
                    self.int(i64::MIN, i64::MAX)?,
                    self.int(i64::MIN, i64::MAX)?,
                ))
            } else {
                None
            },
            pos: self.triple()?,
            motion: self.triple()?,
            rotation: {
                self.tuple(2)?;
                (self.f32()?, self.f32()?)
            },
            health: self.f32()?,
            food_level: self.uint(u32::MAX as u64)? as u32,
            xp_level: self.uint(u32::MAX as u64)? as u32,
            inventory: self.items()?,
            ender_items: self.items()?,
            abilities: {
                self.struct_of(Ty::Abilities)?;
                Abilities {
                    walk_speed: self.f32()?,
                    fly_speed: self.f32()?,
                    may_fly: self.bool()?,
                    flying: self.bool()?,
                    invulnerable: self.bool()?,
                    may_build: self.bool()?,
                    instabuild: self.bool()?,
                }
            },
            entered_nether: if self.option()? {
                Some(self.triple()?)
            } else {
                None
            },
            root_vehicle: if self.option()? {
                self.tuple(2)?;
                Some((self.uint(u32::MAX as u64)? as u32, self.entity()?))
            } else {
                None
            },
            shoulder_entity_left: if self.option()? {
                Some(self.entity()?)
            } else {
                None
            },
            seen_credits: self.bool()?,
            recipes: {
                let n = self.seq()?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(self.string()?);
                }
                v
            },
        })
    }

    fn item(&mut self) -> R<Item> {
        self.struct_of(Ty::Item)?;
        Ok(Item {
            count: self.int(i8::MIN as i64, i8::MAX as i64)? as i8,
            slot: self.uint(u8::MAX as u64)? as u8,
            id: self.string()?,
            damage: if self.option()? {
                Some(self.uint(u16::MAX as u64)? as u16)
            } else {
                None
            },
            enchantments: {
                let n = self.seq()?;
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    self.struct_of(Ty::Enchantment)?;
                    v.push(Enchantment {
                        id: self.string()?,
                        level: self.uint(u16::MAX as u64)? as u16,
                    });
                }
                v
            },
            display_name: if self.option()? {
                Some(self.string()?)
            } else {
                None
            },
        })
    }

    fn entity(&mut self) -> R<Entity> {
        self.tag(VARIANT)?;
        self.type_ref(Ty::Entity)?;
        match self.varint()? {
            0 => {
                self.struct_of(Ty::EntityItem)?;
                Ok(Entity::Item {
                    age: self.uint(u16::MAX as u64)? as u16,
                    item: self.item()?,
                })
            }
            1 => {
                self.struct_of(Ty::EntityMob)?;
                Ok(Entity::Mob {
                    kind: self.string()?,
                    health: self.f32()?,
                    pos: self.triple()?,
                })
            }
            2 => {
                self.tag(UNIT)?;
                Ok(Entity::Empty)
            }
            _ => self.err("no such Entity variant"),
        }
    }
}
