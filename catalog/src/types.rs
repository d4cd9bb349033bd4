//! Column types, named the way AWS Glue names them.
//!
//! A crawled table's schema is a list of [`Field`]s whose [`DataType`]s print as Glue (Hive)
//! type strings: `int`, `bigint`, `double`, `boolean`, `string`, `date`, `timestamp`,
//! `decimal(p,s)`, `binary`, `struct<a:int,b:string>`, `array<double>`, `map<string,bigint>`.
//!
//! Two types exist only while inferring and never reach a table as such:
//!
//! * [`DataType::Null`] — a value seen only as `null` (or an empty CSV cell, or the element of
//!   an empty array). It gives way to any other type when merged; a column that stays `Null`
//!   becomes `string` when the table is finished ([`Schema::finished`]), as Glue does.
//! * The *representation* of a timestamp ([`TsRepr`]): text (`"2024-05-01T10:00:00Z"`), a
//!   native Parquet timestamp, or epoch numbers in a unit ([`EpochUnit`]). All three print as
//!   `timestamp` for Glue ([`DataType::glue_type`]); the representation decides how they merge
//!   (text and epoch numbers do not mix) and tells a reader how to decode the column.
//!   [`DataType`]'s `Display` shows epoch columns as `timestamp(epoch_us)` so that tests and
//!   reports keep the unit visible.

use std::fmt;

/// The unit of an epoch-number timestamp column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EpochUnit {
    Seconds,
    Millis,
    Micros,
    Nanos,
}

impl EpochUnit {
    /// All units, coarsest first.
    pub const ALL: [EpochUnit; 4] = [EpochUnit::Seconds, EpochUnit::Millis, EpochUnit::Micros, EpochUnit::Nanos];

    /// How many of this unit make one second.
    pub fn per_second(self) -> i128 {
        match self {
            EpochUnit::Seconds => 1,
            EpochUnit::Millis => 1_000,
            EpochUnit::Micros => 1_000_000,
            EpochUnit::Nanos => 1_000_000_000,
        }
    }

    /// `s`, `ms`, `us` or `ns`.
    pub fn suffix(self) -> &'static str {
        match self {
            EpochUnit::Seconds => "s",
            EpochUnit::Millis => "ms",
            EpochUnit::Micros => "us",
            EpochUnit::Nanos => "ns",
        }
    }
}

/// How a timestamp column is written in its files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TsRepr {
    /// ISO-8601 / RFC 3339 text, or Hive's `YYYY-MM-DD HH:MM:SS[.f]`.
    Text,
    /// Integers counting this unit since 1970-01-01T00:00:00Z.
    Epoch(EpochUnit),
    /// A typed timestamp (Parquet).
    Native,
}

/// A column type. See the module documentation for the names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    /// Only nulls seen so far (inference only; finished as `string`).
    Null,
    Boolean,
    /// A 32-bit integer.
    Int,
    /// A 64-bit integer.
    BigInt,
    Double,
    /// A fixed-point number (Parquet only).
    Decimal {
        precision: u8,
        scale: i8,
    },
    String,
    /// Raw bytes (Parquet only).
    Binary,
    /// A calendar date.
    Date,
    Timestamp(TsRepr),
    Struct(Vec<Field>),
    Array(Box<DataType>),
    /// Keys and values (Parquet only; JSON objects are always structs).
    Map(Box<DataType>, Box<DataType>),
}

/// A named column, or a field of a struct.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Field {
    pub name: String,
    pub data_type: DataType,
    /// True when some record lacked the field or held `null` in it.
    pub nullable: bool,
}

impl Field {
    pub fn new(name: impl Into<String>, data_type: DataType, nullable: bool) -> Self {
        Field { name: name.into(), data_type, nullable }
    }
}

/// The columns of a file or a table, in the order they were first seen.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct Schema {
    pub columns: Vec<Field>,
}

impl Schema {
    pub fn new(columns: Vec<Field>) -> Self {
        Schema { columns }
    }

    /// The column called `name`, if any.
    pub fn column(&self, name: &str) -> Option<&Field> {
        self.columns.iter().find(|f| f.name == name)
    }

    /// The top-level column names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|f| f.name.as_str())
    }

    /// Every field, nested ones included (what the `max_columns` limit counts).
    pub fn field_count(&self) -> usize {
        self.columns.iter().map(|f| 1 + f.data_type.nested_field_count()).sum()
    }

    /// The schema as a table gets it: columns still [`DataType::Null`] become `string`, at any
    /// depth (an empty array's elements too).
    pub fn finished(mut self) -> Schema {
        for f in &mut self.columns {
            f.data_type.finish();
        }
        self
    }
}

impl DataType {
    /// The Glue / Hive type string: no inference-only detail (a `Null` is `string`, every
    /// timestamp is `timestamp`).
    pub fn glue_type(&self) -> String {
        let mut s = String::new();
        self.write(&mut s, true);
        s
    }

    /// Fields inside this type (struct fields at any depth, through arrays and maps).
    pub fn nested_field_count(&self) -> usize {
        match self {
            DataType::Struct(fields) => fields.iter().map(|f| 1 + f.data_type.nested_field_count()).sum(),
            DataType::Array(e) => e.nested_field_count(),
            DataType::Map(k, v) => k.nested_field_count() + v.nested_field_count(),
            _ => 0,
        }
    }

    /// Levels of nesting: 0 for a scalar, 1 for a struct of scalars or an array of scalars.
    pub fn depth(&self) -> usize {
        match self {
            DataType::Struct(fields) => 1 + fields.iter().map(|f| f.data_type.depth()).max().unwrap_or(0),
            DataType::Array(e) => 1 + e.depth(),
            DataType::Map(k, v) => 1 + k.depth().max(v.depth()),
            _ => 0,
        }
    }

    /// True for `int`, `bigint`, `double`, `decimal`.
    pub fn is_numeric(&self) -> bool {
        matches!(self, DataType::Int | DataType::BigInt | DataType::Double | DataType::Decimal { .. })
    }

    fn finish(&mut self) {
        match self {
            DataType::Null => *self = DataType::String,
            DataType::Struct(fields) => fields.iter_mut().for_each(|f| f.data_type.finish()),
            DataType::Array(e) => e.finish(),
            DataType::Map(k, v) => {
                k.finish();
                v.finish();
            }
            _ => {}
        }
    }

    fn write(&self, out: &mut String, glue: bool) {
        use std::fmt::Write as _;
        match self {
            DataType::Null => out.push_str(if glue { "string" } else { "null" }),
            DataType::Boolean => out.push_str("boolean"),
            DataType::Int => out.push_str("int"),
            DataType::BigInt => out.push_str("bigint"),
            DataType::Double => out.push_str("double"),
            DataType::Decimal { precision, scale } => {
                let _ = write!(out, "decimal({precision},{scale})");
            }
            DataType::String => out.push_str("string"),
            DataType::Binary => out.push_str("binary"),
            DataType::Date => out.push_str("date"),
            DataType::Timestamp(TsRepr::Epoch(unit)) if !glue => {
                let _ = write!(out, "timestamp(epoch_{})", unit.suffix());
            }
            DataType::Timestamp(_) => out.push_str("timestamp"),
            DataType::Struct(fields) => {
                out.push_str("struct<");
                for (i, f) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&f.name);
                    out.push(':');
                    f.data_type.write(out, glue);
                }
                out.push('>');
            }
            DataType::Array(e) => {
                out.push_str("array<");
                e.write(out, glue);
                out.push('>');
            }
            DataType::Map(k, v) => {
                out.push_str("map<");
                k.write(out, glue);
                out.push(',');
                v.write(out, glue);
                out.push('>');
            }
        }
    }
}

/// Glue names, except that inference-only detail stays visible: `null` for a type not yet
/// known, `timestamp(epoch_ms)` for epoch numbers. Use [`DataType::glue_type`] for the catalog.
impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write(&mut s, false);
        f.write_str(&s)
    }
}

/// One column per line: `name: type`, with ` (nullable)` when it is.
impl fmt::Display for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.columns {
            writeln!(f, "{}: {}{}", c.name, c.data_type, if c.nullable { " (nullable)" } else { "" })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glue_names_hide_inference_detail_and_display_keeps_it() {
        let t = DataType::Struct(vec![
            Field::new("ts", DataType::Timestamp(TsRepr::Epoch(EpochUnit::Micros)), false),
            Field::new("tags", DataType::Array(Box::new(DataType::Null)), true),
            Field::new("px", DataType::Decimal { precision: 10, scale: 2 }, false),
        ]);
        assert_eq!(t.glue_type(), "struct<ts:timestamp,tags:array<string>,px:decimal(10,2)>");
        assert_eq!(t.to_string(), "struct<ts:timestamp(epoch_us),tags:array<null>,px:decimal(10,2)>");
        assert_eq!(
            DataType::Map(Box::new(DataType::String), Box::new(DataType::BigInt)).glue_type(),
            "map<string,bigint>"
        );
    }

    #[test]
    fn finishing_turns_unknown_types_into_string_at_any_depth() {
        let s = Schema::new(vec![
            Field::new("a", DataType::Null, true),
            Field::new("b", DataType::Array(Box::new(DataType::Null)), false),
            Field::new("c", DataType::Struct(vec![Field::new("d", DataType::Null, true)]), false),
        ])
        .finished();
        assert_eq!(s.columns[0].data_type, DataType::String);
        assert_eq!(s.columns[1].data_type.glue_type(), "array<string>");
        assert_eq!(s.columns[2].data_type.to_string(), "struct<d:string>");
    }

    #[test]
    fn counts_and_depths() {
        let inner =
            DataType::Struct(vec![Field::new("x", DataType::Int, false), Field::new("y", DataType::Int, false)]);
        let s = Schema::new(vec![
            Field::new("a", DataType::Int, false),
            Field::new("b", DataType::Array(Box::new(inner.clone())), false),
        ]);
        assert_eq!(s.field_count(), 4);
        assert_eq!(s.columns[1].data_type.depth(), 2);
        assert_eq!(DataType::Int.depth(), 0);
    }
}
