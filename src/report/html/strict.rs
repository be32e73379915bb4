//! Tests' strict reading of the HTML pages baton writes (`report.html`,
//! `compare.html`): parsed as XML, so an unclosed or mismatched tag, a bad
//! attribute or an entity XML does not know fails the test that reads it;
//! what the page holds comes back as elements, attributes and texts.

use quick_xml::events::Event;
use std::collections::BTreeMap;

#[derive(Debug, Default)]
pub(crate) struct Parsed {
    /// Every text node and attribute value, unescaped.
    pub texts: Vec<String>,
    /// (element, attribute, value) for every attribute.
    pub attrs: Vec<(String, String, String)>,
    pub elements: Vec<String>,
    /// Every element with its attributes, in document order.
    pub tags: Vec<(String, BTreeMap<String, String>)>,
    pub roots: usize,
}

impl Parsed {
    pub fn count_class(&self, class: &str) -> usize {
        self.attrs
            .iter()
            .filter(|(_, a, v)| a == "class" && v.split_whitespace().any(|c| c == class))
            .count()
    }

    /// The attributes of every element with `class` among its classes.
    pub fn with_class(&self, class: &str) -> Vec<&BTreeMap<String, String>> {
        self.tags
            .iter()
            .map(|(_, a)| a)
            .filter(|a| {
                a.get("class")
                    .is_some_and(|c| c.split_whitespace().any(|c| c == class))
            })
            .collect()
    }

    /// The attributes of every `name` element.
    pub fn named(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        self.tags
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, a)| a)
            .collect()
    }

    /// Every text node and attribute value, a line each.
    pub fn text(&self) -> String {
        self.texts.join("\n")
    }
}

/// Parse `html` as XML, failing on any ill-formedness: mismatched or
/// unclosed tags, bad attributes, unknown entities.
pub(crate) fn parse_strict(html: &str) -> Parsed {
    let mut reader = quick_xml::Reader::from_str(html);
    reader.config_mut().check_end_names = true;
    reader.config_mut().check_comments = true;
    let mut p = Parsed::default();
    let mut stack: Vec<String> = Vec::new();
    let mut text = String::new();
    let attrs_of = |e: &quick_xml::events::BytesStart<'_>, p: &mut Parsed| {
        let name = String::from_utf8(e.name().as_ref().to_vec()).unwrap();
        let mut map = BTreeMap::new();
        for a in e.attributes() {
            let a = a.unwrap_or_else(|err| panic!("bad attribute in <{name}>: {err}"));
            let key = String::from_utf8(a.key.as_ref().to_vec()).unwrap();
            let value = a
                .unescape_value()
                .unwrap_or_else(|err| panic!("bad escape in <{name} {key}>: {err}"))
                .into_owned();
            p.texts.push(value.clone());
            map.insert(key.clone(), value.clone());
            p.attrs.push((name.clone(), key, value));
        }
        p.tags.push((name.clone(), map));
        p.elements.push(name.clone());
        name
    };
    loop {
        let ev = reader.read_event().unwrap_or_else(|e| {
            panic!("not well-formed at byte {}: {e}", reader.buffer_position())
        });
        match ev {
            Event::Start(e) => {
                if stack.is_empty() {
                    p.roots += 1;
                }
                let name = attrs_of(&e, &mut p);
                stack.push(name);
            }
            Event::Empty(e) => {
                if stack.is_empty() {
                    p.roots += 1;
                }
                attrs_of(&e, &mut p);
            }
            Event::End(_) => {
                stack.pop().expect("an end tag without a start");
                p.texts.push(std::mem::take(&mut text));
            }
            Event::Text(t) => text.push_str(&t.decode().unwrap()),
            Event::CData(t) => text.push_str(&String::from_utf8_lossy(&t)),
            Event::GeneralRef(r) => {
                let c = match r.resolve_char_ref().unwrap() {
                    Some(c) => c,
                    None => match r.decode().unwrap().as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => panic!("entity &{other}; is not XML's"),
                    },
                };
                text.push(c);
            }
            Event::Eof => break,
            Event::DocType(_) | Event::Comment(_) | Event::Decl(_) | Event::PI(_) => {}
        }
    }
    assert!(stack.is_empty(), "unclosed elements at the end: {stack:?}");
    p
}
