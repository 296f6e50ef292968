//! Which images the list shows: the face filters and the search text.

use crate::app::widgets::{choice_ui, with_none};
use crate::dataset::{Blur, Face, Occlusion, Pose, Split};

/// A three-way filter on a yes/no property.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tri {
    #[default]
    Any,
    Yes,
    No,
}

impl Tri {
    fn accepts(self, value: bool) -> bool {
        match self {
            Tri::Any => true,
            Tri::Yes => value,
            Tri::No => !value,
        }
    }
}

/// Which images the list shows: those with at least one face passing every face filter, named
/// like the search text. With every filter open, images without faces show too.
#[derive(Clone, Debug, PartialEq)]
pub struct Filters {
    pub landmarks: Tri,
    pub invalid: Tri,
    pub blur: Option<Blur>,
    pub occlusion: Option<Occlusion>,
    pub pose: Option<Pose>,
    /// Face width range in pixels.
    pub min_size: f32,
    pub max_size: f32,
    pub search: String,
}

impl Default for Filters {
    fn default() -> Self {
        Filters {
            landmarks: Tri::Any,
            invalid: Tri::Any,
            blur: None,
            occlusion: None,
            pose: None,
            min_size: 0.0,
            max_size: f32::INFINITY,
            search: String::new(),
        }
    }
}

impl Filters {
    fn face_filters_open(&self) -> bool {
        Filters { search: self.search.clone(), ..Filters::default() } == *self
    }

    fn accepts_face(&self, face: &Face) -> bool {
        let a = face.attributes;
        let width = face.bbox.width();
        self.landmarks.accepts(face.landmarks.is_some())
            && self.invalid.accepts(face.is_invalid())
            && self.blur.is_none_or(|b| a.is_some_and(|a| a.blur == b))
            && self.occlusion.is_none_or(|o| a.is_some_and(|a| a.occlusion == o))
            && self.pose.is_none_or(|p| a.is_some_and(|a| a.pose == p))
            && width >= self.min_size
            && width <= self.max_size
    }

    /// The indexes of the split's images that pass, in file order.
    pub fn apply(&self, split: &Split, event: Option<&str>) -> Vec<usize> {
        let search = self.search.to_lowercase();
        let open = self.face_filters_open();
        split
            .images
            .iter()
            .enumerate()
            .filter(|(_, image)| event.is_none_or(|e| image.event() == e))
            .filter(|(_, image)| search.is_empty() || image.path.to_lowercase().contains(&search))
            .filter(|(_, image)| open || image.faces.iter().any(|f| self.accepts_face(f)))
            .map(|(i, _)| i)
            .collect()
    }

    /// The filter controls (the search field sits outside, always visible).
    pub fn controls_ui(&mut self, ui: &mut egui::Ui) {
        let f = self;
        tri_ui(ui, "Landmarks", &mut f.landmarks, ["any", "has", "lacks"]);
        tri_ui(ui, "Invalid", &mut f.invalid, ["any", "only invalid", "only valid"]);
        any_or_one_ui(ui, "Blur", &mut f.blur, Blur::ALL, Blur::name);
        any_or_one_ui(ui, "Occlusion", &mut f.occlusion, Occlusion::ALL, Occlusion::name);
        any_or_one_ui(ui, "Pose", &mut f.pose, Pose::ALL, Pose::name);
        ui.horizontal(|ui| {
            ui.label("Face width");
            ui.add(egui::DragValue::new(&mut f.min_size).range(0.0..=10_000.0).suffix(" px"));
            ui.label("to");
            let mut max = if f.max_size.is_finite() { f.max_size } else { 10_000.0 };
            if ui.add(egui::DragValue::new(&mut max).range(0.0..=10_000.0).suffix(" px")).changed() {
                f.max_size = if max >= 10_000.0 { f32::INFINITY } else { max };
            }
        });
        if ui.button("Clear filters").clicked() {
            *f = Filters { search: std::mem::take(&mut f.search), ..Filters::default() };
        }
    }
}

fn tri_ui(ui: &mut egui::Ui, label: &str, value: &mut Tri, names: [&str; 3]) {
    let choices = [Tri::Any, Tri::Yes, Tri::No].into_iter().zip(names.map(String::from));
    choice_ui(ui, egui::ComboBox::from_label(label), value, choices);
}

/// "any" or one of `all`.
fn any_or_one_ui<T: Copy + PartialEq>(
    ui: &mut egui::Ui,
    label: &str,
    value: &mut Option<T>,
    all: &[T],
    name: fn(T) -> &'static str,
) {
    let choices = with_none("any", all.iter().map(|v| (*v, name(*v).to_string())));
    choice_ui(ui, egui::ComboBox::from_label(label), value, choices);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::synth::{SynthConfig, generate};
    use crate::dataset::{Dataset, SplitKind};

    #[test]
    fn filters_select_images_by_their_faces_and_name() {
        let dir = tempfile::tempdir().unwrap();
        generate(dir.path(), &SynthConfig::new(12, 5)).unwrap();
        let (dataset, _) = Dataset::open(dir.path()).unwrap();
        let split = dataset.split(SplitKind::Train).unwrap();
        let all = Filters::default().apply(split, None);
        assert_eq!(all.len(), split.images.len());
        let big = Filters { min_size: 60.0, ..Filters::default() }.apply(split, None);
        assert!(big.len() < all.len());
        for i in &big {
            assert!(split.images[*i].faces.iter().any(|f| f.bbox.width() >= 60.0));
        }
        let name = split.images[3].stem().to_string();
        let found = Filters { search: name.to_uppercase(), ..Filters::default() }.apply(split, None);
        assert_eq!(found, vec![3]);
        let event = split.images[0].event().to_string();
        assert!(Filters::default().apply(split, Some(&event)).iter().all(|i| split.images[*i].event() == event));
        let heavy = Filters { blur: Some(Blur::Heavy), ..Filters::default() }.apply(split, None);
        for i in &heavy {
            assert!(split.images[*i].faces.iter().any(|f| f.attributes.is_some_and(|a| a.blur == Blur::Heavy)));
        }
    }
}
