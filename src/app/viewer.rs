//! The zoomable, pannable image view shared by the Dataset, Evaluate and Detect panels, and the
//! mapping between image pixels and screen points that overlays and editing use.

use egui::{Color32, Pos2, Rect, Sense, TextureHandle, TextureOptions, Vec2};
use image::RgbImage;

use crate::geometry::Point;

/// Image pixels → screen points for the frame being drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ImageTransform {
    /// Screen position of the image's top-left corner.
    pub origin: Pos2,
    /// Screen points per image pixel.
    pub scale: f32,
}

impl ImageTransform {
    pub fn to_screen(&self, p: Point) -> Pos2 {
        self.origin + Vec2::new(p.x, p.y) * self.scale
    }

    pub fn to_image(&self, pos: Pos2) -> Point {
        let v = (pos - self.origin) / self.scale;
        Point { x: v.x, y: v.y }
    }

    pub fn rect_to_screen(&self, [x1, y1, x2, y2]: [f32; 4]) -> Rect {
        Rect::from_min_max(self.to_screen(Point { x: x1, y: y1 }), self.to_screen(Point { x: x2, y: y2 }))
    }
}

/// How the image sits in the view: fitted to it, or at a zoom and pan the user chose.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Placement {
    Fit,
    Manual { zoom: f32, offset: Vec2 },
}

/// One image on screen (a texture uploaded once per image), with zoom and pan.
pub struct ImageView {
    texture: Option<TextureHandle>,
    size: [u32; 2],
    placement: Placement,
    /// Where the image was last drawn; overlays and tests read it.
    pub transform: Option<ImageTransform>,
    /// A region (image pixels) to zoom to when the image is next drawn: it survives the image
    /// being loaded in between, so selecting a face on another image lands zoomed on it.
    focus: Option<[f32; 4]>,
}

impl Default for ImageView {
    fn default() -> Self {
        ImageView { texture: None, size: [0, 0], placement: Placement::Fit, transform: None, focus: None }
    }
}

/// What the user did in the view this frame, for the panel's own tools.
pub struct ViewInput {
    pub response: egui::Response,
    pub transform: ImageTransform,
}

impl ImageView {
    /// Replaces the image (and fits it to the view).
    pub fn set_image(&mut self, ctx: &egui::Context, name: &str, image: &RgbImage) {
        let color = egui::ColorImage::from_rgb([image.width() as usize, image.height() as usize], image.as_raw());
        self.texture = Some(ctx.load_texture(name, color, TextureOptions::LINEAR));
        self.size = [image.width(), image.height()];
        self.placement = Placement::Fit;
    }

    pub fn clear(&mut self) {
        self.texture = None;
        self.transform = None;
    }

    pub fn has_image(&self) -> bool {
        self.texture.is_some()
    }

    pub fn image_size(&self) -> [u32; 2] {
        self.size
    }

    pub fn fit(&mut self) {
        self.placement = Placement::Fit;
    }

    /// Zooms so that `region` (`[x1, y1, x2, y2]` in image pixels) fills about 40% of the view,
    /// centred, on the next frame the image is drawn.
    pub fn focus(&mut self, region: [f32; 4]) {
        self.focus = Some(region);
    }

    /// Draws the image in the remaining space. The wheel zooms around the pointer; dragging with
    /// the secondary or middle button pans, and so does a primary drag when `primary_pans`.
    pub fn show_ui(&mut self, ui: &mut egui::Ui, primary_pans: bool) -> Option<ViewInput> {
        let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
        let painter = ui.painter_at(rect);
        painter.rect_filled(rect, 0.0, Color32::from_gray(24));
        let Some(texture) = &self.texture else {
            self.transform = None;
            return None;
        };
        let image_size = Vec2::new(self.size[0] as f32, self.size[1] as f32);
        let fit_scale = (rect.width() / image_size.x).min(rect.height() / image_size.y).max(1e-3);
        if let Some([x1, y1, x2, y2]) = self.focus.take() {
            let (w, h) = ((x2 - x1).max(1.0), (y2 - y1).max(1.0));
            let zoom =
                (0.4 * rect.width() / (w * fit_scale)).min(0.4 * rect.height() / (h * fit_scale)).clamp(1.0, 64.0);
            let scale = fit_scale * zoom;
            // The region's centre lands on the view's centre.
            let centre = Vec2::new((x1 + x2) / 2.0, (y1 + y2) / 2.0);
            self.placement = Placement::Manual { zoom, offset: image_size * scale / 2.0 - centre * scale };
        }
        let (mut zoom, mut offset) = match self.placement {
            Placement::Fit => (1.0, Vec2::ZERO),
            Placement::Manual { zoom, offset } => (zoom, offset),
        };
        let pans = response.dragged_by(egui::PointerButton::Secondary)
            || response.dragged_by(egui::PointerButton::Middle)
            || (primary_pans && response.dragged_by(egui::PointerButton::Primary));
        if pans {
            offset += response.drag_delta();
            self.placement = Placement::Manual { zoom, offset };
        }
        if response.hovered() {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y);
            if scroll != 0.0 {
                let pointer = ui.input(|i| i.pointer.hover_pos()).unwrap_or(rect.center());
                let before = self.placed(rect, image_size, fit_scale, zoom, offset);
                let anchor = before.to_image(pointer);
                zoom = (zoom * (scroll / 200.0).exp()).clamp(0.1, 64.0);
                let after = self.placed(rect, image_size, fit_scale, zoom, offset);
                offset += pointer - after.to_screen(anchor);
                self.placement = Placement::Manual { zoom, offset };
            }
        }
        if response.double_clicked_by(egui::PointerButton::Secondary) {
            self.placement = Placement::Fit;
            (zoom, offset) = (1.0, Vec2::ZERO);
        }
        let transform = self.placed(rect, image_size, fit_scale, zoom, offset);
        let image_rect = Rect::from_min_size(transform.origin, image_size * transform.scale);
        let uv = Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0));
        painter.image(texture.id(), image_rect, uv, Color32::WHITE);
        self.transform = Some(transform);
        Some(ViewInput { response, transform })
    }

    fn placed(&self, rect: Rect, image_size: Vec2, fit_scale: f32, zoom: f32, offset: Vec2) -> ImageTransform {
        let scale = fit_scale * zoom;
        let origin = rect.center() - image_size * scale / 2.0 + offset;
        ImageTransform { origin, scale }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn screen_and_image_coordinates_round_trip() {
        let t = ImageTransform { origin: Pos2::new(10.0, 20.0), scale: 2.5 };
        let p = Point { x: 7.0, y: 3.0 };
        let s = t.to_screen(p);
        assert_eq!(s, Pos2::new(27.5, 27.5));
        let back = t.to_image(s);
        assert!((back.x - p.x).abs() < 1e-5 && (back.y - p.y).abs() < 1e-5);
    }
}
