//! The studio page end to end in a real browser: `stipple serve` on the shipped model with
//! fresh folders, Debian's headless Chromium driven through ChromeDriver (WebDriver). Each
//! test clicks and types as a user does and reads what the page shows; each ends by checking
//! that the page recorded no uncaught error and no console error. Without chromedriver the
//! tests fail (CI installs it), they do not skip.

#[path = "browser/studio.rs"]
mod studio;

use std::collections::HashSet;

use serde_json::{json, Value};
use studio::{Page, CONTROL, ENTER, ESCAPE};

/// Waits for the Create view's job to end with a status starting with `start`.
async fn wait_status(page: &Page, start: &str, seconds: u64) {
    page.wait(&format!("document.getElementById('job-status').textContent.startsWith({start:?})"), &format!("the status \"{start}…\""), seconds).await;
}

/// The ids of the pictures in the Create view's results.
async fn result_ids(page: &Page) -> Vec<i64> {
    let ids = page.js("[...document.querySelectorAll('#results .thumb')].map(t => Number(t.dataset.id))").await;
    ids.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect()
}

fn records(page: &Page) -> Vec<Value> {
    page.get_json("/api/images")["records"].as_array().unwrap().clone()
}

#[test]
fn generating_shows_the_preview_change_during_the_job_then_the_pictures() {
    studio::run(&[], |page| async move {
        page.open("").await;
        // Every live preview the page shows (not the trajectory loaded after the job), with
        // what the Generate button read at that moment.
        page.run_js(
            "window.seen = []; const p = document.getElementById('preview'); \
             new MutationObserver(() => document.getElementById('trajectory-downloads').hidden && seen.push([p.src, document.getElementById('generate').textContent])).observe(p, { attributes: true, attributeFilter: ['src'] });",
        )
        .await;
        page.fill("prompt", "a red heart").await;
        page.fill("steps", "30").await;
        page.fill("count", "2").await;
        page.fill("seed", "7").await;
        page.click("#generate").await;
        wait_status(&page, "Done", 120).await;

        let seen = page.js("seen").await;
        let seen = seen.as_array().unwrap();
        let distinct: HashSet<&str> = seen.iter().map(|s| s[0].as_str().unwrap()).collect();
        assert!(distinct.len() >= 5, "the preview should change step by step; it showed {} different pictures", distinct.len());
        assert!(seen.iter().all(|s| s[1] == "Cancel"), "every preview arrived while the job ran (the button read Cancel): {:?}", seen.iter().map(|s| &s[1]).collect::<Vec<_>>());
        assert!(seen.iter().all(|s| s[0].as_str().unwrap().starts_with("data:image/png;base64,")));
        assert_eq!(page.text("generate").await, "Generate");
        assert_eq!(page.js("document.getElementById('progress').value").await.as_f64(), Some(1.0));
        assert!(page.text("progress-text").await.starts_with("step 30/30 · σ "), "{}", page.text("progress-text").await);

        // The finished pictures: shown, 16×16, the gallery's newest, with the seeds asked for.
        page.wait("[...document.querySelectorAll('#results .thumb img')].filter(i => i.complete && i.naturalWidth === 16).length === 2", "two 16×16 pictures", 20).await;
        let ids = result_ids(&page).await;
        let stored = records(&page);
        assert_eq!(stored.iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>(), ids.iter().rev().copied().collect::<Vec<_>>());
        assert_eq!(stored.iter().map(|r| r["seed"].as_u64().unwrap()).collect::<Vec<_>>(), vec![8, 7]);
        assert!(stored.iter().all(|r| r["prompt"] == "a red heart"));

        // The scrubber steps back through the trajectory the server recorded.
        page.wait("!document.getElementById('trajectory-downloads').hidden", "the recorded trajectory", 20).await;
        assert_eq!(page.js("document.getElementById('scrubber-panel').hidden").await, json!(false));
        let last = page.text("preview-caption").await;
        assert!(last.contains("at step 30 of 30"), "{last}");
        page.run_js("const s = document.getElementById('scrubber'); s.value = 0; s.dispatchEvent(new Event('input'));").await;
        let first = page.text("preview-caption").await;
        assert!(first.contains("at step 1 of 30"), "scrubbed to the first step: {first}");

        // "Reuse last" puts back the seed of the last picture made.
        page.fill("seed", "").await;
        page.click("#seed-last").await;
        assert_eq!(page.value("seed").await, "7");
        page.click("#seed-dice").await;
        assert_ne!(page.value("seed").await, "", "the dice draws a seed");

        // Every control has a label, and on a phone-sized window no view needs sideways scrolling.
        let unlabelled = page.js("[...document.querySelectorAll('input, select, textarea')].filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label')).map(e => e.id)").await;
        assert_eq!(unlabelled, json!([]), "controls without a label");
        page.client.set_window_size(390, 844).await.unwrap();
        for tab in ["gallery", "train", "create"] {
            page.click(&format!("#tab-{tab}")).await;
            page.wait(&format!("!document.getElementById('view-{tab}').hidden"), tab, 20).await;
            let (scroll, inner) = (page.js("document.documentElement.scrollWidth").await, page.js("window.innerWidth").await);
            assert!(scroll.as_u64() <= inner.as_u64(), "the {tab} view is {scroll} px wide in a {inner} px window");
        }
        page.assert_no_problems().await;
    });
}

#[test]
fn ctrl_enter_generates_escape_cancels_and_a_queued_job_shows_its_place() {
    studio::run(&[], |page| async move {
        page.open("").await;
        page.fill("prompt", "a smiling face").await;
        page.fill("steps", "150").await;
        page.fill("count", "16").await;
        page.click("#prompt").await;
        page.keys(&format!("{CONTROL}{ENTER}")).await;
        page.wait("document.getElementById('generate').textContent === 'Cancel' && document.getElementById('progress').value > 0", "the job to start sampling", 60).await;
        page.keys(ESCAPE).await;
        wait_status(&page, "Cancelled.", 60).await;
        assert_eq!(page.text("generate").await, "Generate");
        let progress = page.js("document.getElementById('progress').value").await.as_f64().unwrap();
        assert!(progress < 1.0, "cancelled before the end, at {progress}");
        assert!(records(&page).is_empty(), "a cancelled job stores no picture");
        assert!(result_ids(&page).await.is_empty());

        // The Cancel button does the same.
        page.click("#generate").await;
        page.wait("document.getElementById('progress').value > 0 && document.getElementById('generate').textContent === 'Cancel'", "the second job to run", 60).await;
        page.click("#generate").await;
        wait_status(&page, "Cancelled.", 60).await;
        assert!(records(&page).is_empty());

        // Behind another client's job, the page shows its place in the queue, then runs.
        page.run_js(
            "fetch('/api/jobs', { method: 'POST', headers: { 'Content-Type': 'application/json' },              body: JSON.stringify({ kind: 'generate', prompt: 'a cat', steps: 150, count: 16 }) }).then(r => r.json()).then(j => window.blocker = j.id);",
        )
        .await;
        page.wait("window.blocker !== undefined", "the other client's job", 20).await;
        page.fill("steps", "5").await;
        page.fill("count", "1").await;
        page.click("#generate").await;
        wait_status(&page, "Queued: ", 20).await;
        let queued = page.text("job-status").await;
        assert!(queued == "Queued: next to run." || queued == "Queued: 1 job ahead.", "{queued}");
        page.run_js("fetch(`/api/jobs/${window.blocker}/cancel`, { method: 'POST' });").await;
        wait_status(&page, "Done: 1 picture", 60).await;
        assert_eq!(records(&page).len(), 1);
        page.assert_no_problems().await;
    });
}

#[test]
fn a_picture_of_the_gallery_gives_back_its_settings_and_can_be_searched_and_deleted() {
    studio::run(&[], |page| async move {
        page.open("").await;
        page.fill("prompt", "a green tree").await;
        page.choose("sampler", "euler").await;
        page.choose("schedule", "karras").await;
        page.fill("steps", "8").await;
        page.fill("guidance-scale", "3").await;
        page.fill("count", "1").await;
        page.fill("seed", "1234").await;
        page.click("#generate").await;
        wait_status(&page, "Done", 120).await;

        // Change everything, then take the settings back from the gallery.
        page.fill("prompt", "something else").await;
        page.choose("sampler", "ddim").await;
        page.choose("schedule", "").await;
        page.fill("steps", "20").await;
        page.fill("guidance-scale", "5").await;
        page.fill("seed", "1").await;

        page.click("#tab-gallery").await;
        let one = "document.querySelectorAll('#gallery-grid .thumb').length === 1";
        page.wait(one, "the picture in the gallery", 20).await;
        page.fill("gallery-search", "zebra").await;
        page.wait("document.getElementById('gallery-status').textContent === 'No pictures yet.'", "the search to find nothing", 20).await;
        page.fill("gallery-search", "TREE").await;
        page.wait(one, "the search (any case) to find the picture", 20).await;
        page.choose("gallery-model", "emoji-prompts").await;
        page.wait(one, "the model filter to keep the picture", 20).await;

        page.click("#gallery-grid .thumb").await;
        page.wait("document.getElementById('picture').open", "the picture dialog", 20).await;
        let recipe = |name: &str| format!("document.querySelector('#picture-recipe dd[data-name=\"{name}\"]').textContent");
        assert_eq!(page.js(&recipe("Seed")).await, "1234");
        assert_eq!(page.js(&recipe("Sampler")).await, "Euler");
        assert_eq!(page.js(&recipe("Schedule")).await, "Karras");
        assert_eq!(page.js(&recipe("Steps")).await, "8");
        assert_eq!(page.js(&recipe("Guidance scale")).await, "3");
        page.wait("document.getElementById('picture-image').naturalWidth === 16", "the picture, large", 20).await;
        // Download gives the stored PNG.
        let href = page.js("document.getElementById('picture-download').getAttribute('href')").await;
        let png = page.get(href.as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "the download is a PNG");

        page.click("#picture-reuse").await;
        page.wait("!document.getElementById('view-create').hidden && !document.getElementById('picture').open", "the Create view", 20).await;
        assert_eq!(page.value("prompt").await, "a green tree");
        assert_eq!(page.value("sampler").await, "euler");
        assert_eq!(page.value("schedule").await, "karras");
        assert_eq!(page.value("steps").await, "8");
        assert_eq!(page.value("guidance-scale").await, "3");
        assert_eq!(page.value("seed").await, "1234");
        assert_eq!(page.value("model").await, "emoji-prompts");

        // "Reuse seed" takes the seed only.
        page.fill("seed", "99").await;
        page.fill("prompt", "kept").await;
        page.click("#tab-gallery").await;
        page.wait(one, "the gallery again", 20).await;
        page.click("#gallery-grid .thumb").await;
        page.wait("document.getElementById('picture').open", "the picture dialog", 20).await;
        page.click("#picture-seed").await;
        page.wait("!document.getElementById('view-create').hidden", "the Create view", 20).await;
        assert_eq!(page.value("seed").await, "1234");
        assert_eq!(page.value("prompt").await, "kept");

        // Delete asks once more, then removes the picture from the page and the server.
        page.click("#tab-gallery").await;
        page.wait(one, "the gallery again", 20).await;
        page.click("#gallery-grid .thumb").await;
        page.wait("document.getElementById('picture').open", "the picture dialog", 20).await;
        page.click("#picture-delete").await;
        assert_eq!(page.text("picture-delete").await, "Really delete?");
        assert_eq!(records(&page).len(), 1, "the first click only asks");
        page.click("#picture-delete").await;
        page.wait("!document.getElementById('picture').open && document.querySelectorAll('#gallery-grid .thumb').length === 0", "the picture to go", 20).await;
        assert!(records(&page).is_empty());
        page.assert_no_problems().await;
    });
}

#[test]
fn the_gallery_loads_the_next_page_when_its_end_scrolls_into_view() {
    studio::run(&[], |page| async move {
        page.client.set_window_size(500, 700).await.unwrap();
        page.open("").await;
        page.fill("prompt", "a heart").await;
        page.fill("steps", "2").await;
        page.fill("count", "45").await;
        page.click("#generate").await;
        wait_status(&page, "Done: 45 pictures", 120).await;
        page.click("#tab-gallery").await;
        // The first page (40) fills more than the window: the rest waits for the scroll.
        page.wait("document.getElementById('gallery-status').textContent === '40 pictures, more below.'", "the first page", 20).await;
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert_eq!(page.js("document.querySelectorAll('#gallery-grid .thumb').length").await, 40, "no second page before the scroll");
        page.run_js("document.getElementById('gallery-more').scrollIntoView();").await;
        page.wait("document.getElementById('gallery-status').textContent === '45 pictures.'", "the second page", 20).await;
        let ids = page.js("[...document.querySelectorAll('#gallery-grid .thumb')].map(t => Number(t.dataset.id))").await;
        let ids: Vec<i64> = ids.as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        assert_eq!(ids, (1..=45).rev().collect::<Vec<_>>(), "every picture once, newest first");
        page.assert_no_problems().await;
    });
}

#[test]
fn inpainting_repaints_only_the_pixels_painted_on_the_mask() {
    studio::run(&[], |page| async move {
        page.open("").await;
        page.fill("prompt", "a blue circle").await;
        page.fill("steps", "10").await;
        page.fill("count", "1").await;
        page.fill("seed", "3").await;
        page.click("#generate").await;
        wait_status(&page, "Done", 120).await;
        let init = result_ids(&page).await[0];

        // The picture becomes the init image; paint a stroke over its upper left part.
        page.click("#results .thumb").await;
        page.wait("document.getElementById('picture').open", "the picture dialog", 20).await;
        page.click("#picture-init").await;
        page.wait("!document.getElementById('init-panel').hidden && document.getElementById('mask-canvas').width === 16", "the init image and its mask", 20).await;
        page.click("#inpaint").await;
        assert_eq!(page.value("strength").await, "1", "inpainting starts from noise");
        page.run_js(
            "const c = document.getElementById('mask-canvas'); const r = c.getBoundingClientRect(); \
             const at = (type, fx, fy) => c.dispatchEvent(new PointerEvent(type, { clientX: r.left + fx * r.width, clientY: r.top + fy * r.height, bubbles: true, pointerId: 1, pointerType: 'mouse', isPrimary: true, buttons: type === 'pointerup' ? 0 : 1 })); \
             at('pointerdown', 0.15, 0.15); at('pointermove', 0.45, 0.2); at('pointermove', 0.45, 0.45); at('pointerup', 0.45, 0.45);",
        )
        .await;
        // The painted pixels, as the overlay shows them.
        let painted = page
            .js("(() => { const c = document.getElementById('mask-canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; const out = []; for (let i = 0; i < d.length / 4; i++) if (d[i * 4 + 3] > 0) out.push(i); return out; })()")
            .await;
        let painted: HashSet<usize> = painted.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert!((8..=96).contains(&painted.len()), "the stroke painted {} of 256 pixels", painted.len());

        page.fill("prompt", "a yellow star").await;
        page.fill("seed", "5").await;
        page.click("#generate").await;
        wait_status(&page, "Done", 120).await;
        let result = result_ids(&page).await[0];
        assert_ne!(result, init);

        let pixels = |id: i64| image::load_from_memory(&page.get(&format!("/api/images/{id}.png"))).unwrap().to_rgb8();
        let (before, after) = (pixels(init), pixels(result));
        assert_eq!(before.dimensions(), (16, 16));
        let mut changed_inside = 0;
        for (i, (a, b)) in before.pixels().zip(after.pixels()).enumerate() {
            if painted.contains(&i) {
                changed_inside += usize::from(a != b);
            } else {
                assert_eq!(a, b, "pixel {i} lies outside the mask and must be kept");
            }
        }
        assert!(changed_inside > 0, "the masked pixels were repainted");
        // The recipe says so.
        page.click("#results .thumb").await;
        page.wait("document.getElementById('picture').open", "the picture dialog", 20).await;
        assert_eq!(page.js("document.querySelector('#picture-recipe dd[data-name=\"Mask\"]').textContent").await, "yes (inpainted)");
        page.run_js("document.getElementById('picture').close();").await;

        // The same with the mask blurred by 2 pixels (a pixel model keeps what lies outside the
        // blurred mask's mid-grey outline exactly): the far corner stays the init image's, and
        // the recipe records the blur.
        page.fill("mask-blur", "2").await;
        page.click("#generate").await;
        wait_status(&page, "Done", 120).await;
        let soft = result_ids(&page).await[0];
        assert_ne!(soft, result);
        assert_eq!(pixels(soft).get_pixel(15, 15), before.get_pixel(15, 15), "the far corner is kept");
        page.click("#results .thumb").await;
        page.wait("document.getElementById('picture').open", "the picture dialog", 20).await;
        assert_eq!(page.js("document.querySelector('#picture-recipe dd[data-name=\"Mask\"]').textContent").await, "yes (inpainted, blurred by 2 px)");
        page.assert_no_problems().await;
    });
}

/// `document.getElementById(id)`'s canvas pixels with some opacity.
async fn opaque_pixels(page: &Page, id: &str) -> u64 {
    page.js(&format!(
        "(() => {{ const c = document.getElementById('{id}'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; }})()"
    ))
    .await
    .as_u64()
    .unwrap()
}

#[test]
fn the_x_t_toggle_switches_the_preview_and_the_trajectory_scrubs_and_downloads() {
    studio::run(&[], |page| async move {
        page.open("").await;
        page.run_js(
            "window.shown = []; const p = document.getElementById('preview'); \
             new MutationObserver(records => records.forEach(() => shown.push([p.dataset.shows, document.getElementById('generate').textContent]))).observe(p, { attributes: true, attributeFilter: ['src'] });",
        )
        .await;
        // With the toggle on, the live previews are the noisy pictures x_t. The page follows
        // the job's events from when it subscribes (the server replays only the latest step),
        // so on a fast machine the first steps may pass unseen: 40 steps leave many to see.
        page.click("#show-xt").await;
        page.fill("prompt", "red apple").await;
        page.fill("steps", "40").await;
        page.fill("count", "1").await;
        page.fill("seed", "5").await;
        page.click("#generate").await;
        wait_status(&page, "Done", 120).await;
        let shown = page.js("shown.filter(s => s[1] === 'Cancel').map(s => s[0])").await;
        let live: Vec<&str> = shown.as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
        assert!(live.len() >= 3 && live.iter().all(|s| *s == "x_t"), "live previews: {live:?}");

        // After the job: the server's trajectory, one frame per step, scrubbed both ways.
        page.wait("!document.getElementById('trajectory-downloads').hidden", "the recorded trajectory", 20).await;
        assert_eq!(page.js("Number(document.getElementById('scrubber').max)").await, 39);
        let src = || page.js("document.getElementById('preview').src");
        let noisy_last = src().await;
        assert!(page.text("preview-caption").await.contains("x_t entering step 40 of 40"));
        page.click("#show-xt").await;
        let clean_last = src().await;
        assert_ne!(noisy_last, clean_last, "the toggle changes the picture");
        assert_eq!(page.js("document.getElementById('preview').dataset.shows").await, "x0");
        assert!(page.text("preview-caption").await.contains("x̂₀ at step 40 of 40"));
        page.run_js("const s = document.getElementById('scrubber'); s.value = 0; s.dispatchEvent(new Event('input'));").await;
        let clean_first = src().await;
        assert!(page.text("preview-caption").await.contains("at step 1 of 40"));
        assert_ne!(clean_first, clean_last, "the first prediction is not the last");
        page.click("#show-xt").await;
        assert_ne!(src().await, clean_first);
        assert_eq!(page.text("scrubber-value").await, "1/40");

        // The downloads are the animations `sample --trajectory` writes.
        let href = |id: &str| format!("document.getElementById('{id}').getAttribute('href')");
        let gif = page.get(page.js(&href("trajectory-gif")).await.as_str().unwrap());
        assert!(gif.starts_with(b"GIF89a"), "a GIF");
        let apng = page.get(page.js(&href("trajectory-apng")).await.as_str().unwrap());
        assert!(apng.starts_with(b"\x89PNG") && apng.windows(4).any(|w| w == b"acTL"), "an animated PNG");
        assert!(page.js("document.getElementById('trajectory-gif').download").await.as_str().unwrap().ends_with(".gif"));
        page.assert_no_problems().await;
    });
}

#[test]
fn pointing_at_a_word_of_the_prompt_lays_its_attention_over_the_picture() {
    studio::run(&[], |page| async move {
        page.open("").await;
        page.fill("prompt", "red apple").await;
        page.fill("steps", "6").await;
        page.fill("count", "2").await;
        page.click("#generate").await;
        wait_status(&page, "Done", 120).await;
        // The shipped tokenizer's pieces: "red", then "apple" (in one piece or more).
        let tokens = "[...document.querySelectorAll('#attention-tokens .token')].map(b => b.textContent).join('|')";
        page.wait(&format!("{tokens}.startsWith('red|') && {tokens}.replaceAll('|', '') === 'redapple'"), "the prompt's tokens", 20).await;
        let last = page.js("document.querySelectorAll('#attention-tokens .token').length - 1").await;
        let last_token = format!("#attention-tokens .token[data-index=\"{last}\"]");
        page.wait("document.getElementById('attention-image').naturalWidth === 16", "the picture under the maps", 20).await;
        assert_eq!(page.js("document.getElementById('attention-picture').parentElement.hidden").await, false, "two pictures to choose from");
        assert_eq!(opaque_pixels(&page, "attention-overlay").await, 0, "no overlay before a word is chosen");

        // Hovering a word lays its map over the picture; another word, another map.
        page.click("#attention-tokens .token[data-index=\"0\"]").await;
        assert_eq!(page.js("document.getElementById('attention-overlay').dataset.token").await, "0");
        assert!(opaque_pixels(&page, "attention-overlay").await > 0);
        let map = "Array.from(document.getElementById('attention-overlay').getContext('2d').getImageData(0, 0, 16, 16).data).join()";
        let red = page.js(map).await;
        // Clicking keeps it (the pointer may leave).
        page.click(&last_token).await;
        page.run_js("document.getElementById('attention-tokens').dispatchEvent(new MouseEvent('mouseleave'));").await;
        assert_eq!(page.js("document.getElementById('attention-overlay').dataset.token").await, last.to_string());
        assert_eq!(page.js(&format!("document.querySelector('{last_token}').getAttribute('aria-pressed')")).await, "true");
        assert_eq!(page.js("[document.getElementById('attention-overlay').width, document.getElementById('attention-overlay').height]").await, json!([16, 16]));
        assert_ne!(page.js(map).await, red, "each word has its own map");
        let piece = page.js(&format!("document.querySelector('{last_token}').textContent")).await;
        assert!(page.text("attention-caption").await.contains(&format!("“{}”", piece.as_str().unwrap())));

        // The second picture's maps.
        let second = page.js("document.getElementById('attention-picture').options[1].value").await;
        page.choose("attention-picture", second.as_str().unwrap()).await;
        // Its tokens, with the first picture's chosen word let go (a word under the resting
        // pointer may still be drawn while hovered, as it should).
        let none_chosen = "!document.querySelector('#attention-tokens .token[aria-pressed=\"true\"]')";
        page.wait(&format!("{tokens}.startsWith('red|') && {none_chosen}"), "the second picture's tokens", 20).await;
        page.assert_no_problems().await;
    });
}

/// A zip of `n` 8×8 pictures of different colours, and one stray text file.
fn zip_of_pictures(path: &std::path::Path, n: u8) {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..n {
        let img = image::RgbImage::from_pixel(8, 8, image::Rgb([30 * i, 255 - 30 * i, 90]));
        let mut png = std::io::Cursor::new(Vec::new());
        img.write_to(&mut png, image::ImageFormat::Png).unwrap();
        w.start_file(format!("colours/{i}.png"), zip::write::SimpleFileOptions::default()).unwrap();
        w.write_all(png.get_ref()).unwrap();
    }
    w.start_file("notes.txt", zip::write::SimpleFileOptions::default()).unwrap();
    w.write_all(b"not a picture").unwrap();
    w.finish().unwrap();
}

#[test]
fn a_zip_of_pictures_uploads_into_a_data_folder_and_starts_training() {
    let files = tempfile::tempdir().unwrap();
    let root = files.path().join("data-root");
    std::fs::create_dir(&root).unwrap();
    let (good, bad) = (files.path().join("my greens.zip"), files.path().join("broken.zip"));
    zip_of_pictures(&good, 6);
    std::fs::write(&bad, b"PK\x03\x04 not really a zip").unwrap();
    let folder = root.join("my-greens");
    studio::run(&["--data-root", root.to_str().unwrap()], move |page| async move {
        page.open("#train").await;
        // A broken zip: the error sits next to the zip control, nothing is trained.
        fill_tiny_run(&page, "zip-run", "20").await;
        let zip_input = page.client.find(fantoccini::Locator::Id("train-zip")).await.unwrap();
        zip_input.send_keys(bad.to_str().unwrap()).await.unwrap();
        page.click("#train-start").await;
        let error = "document.querySelector('#train-form .field[data-field=\"zip\"] .error').textContent";
        page.wait(&format!("{error}.includes('not a readable zip')"), "the error next to the zip", 20).await;
        assert_eq!(page.text("train-status").await, "Not started.");

        // A good one: unpacked into a folder named after it, which the run then trains on.
        page.run_js("document.getElementById('train-zip').value = '';").await;
        zip_input.send_keys(good.to_str().unwrap()).await.unwrap();
        page.click("#train-start").await;
        page.wait("document.getElementById('train-status').textContent.startsWith('Trained')", "the run to finish", 180).await;
        assert_eq!(page.value("train-data").await, "my-greens", "the data field names the new folder");
        assert_eq!(page.js(error).await, "");
        let mut unpacked: Vec<String> = std::fs::read_dir(folder.join("colours")).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        unpacked.sort();
        assert_eq!(unpacked, (0..6).map(|i| format!("{i}.png")).collect::<Vec<_>>());
        assert!(!folder.join("notes.txt").exists(), "only pictures are unpacked");
        assert!(page.js("Number(document.getElementById('loss-chart').dataset.points)").await.as_u64().unwrap() > 0);
        page.assert_no_problems().await;
    });
}

/// The Train form filled for a seconds-long run of an 8×8 two-level network.
async fn fill_tiny_run(page: &Page, name: &str, steps: &str) {
    page.fill("train-name", name).await;
    page.fill("train-steps", steps).await;
    page.fill("train-batch", "4").await;
    page.fill("train-sample-every", "30").await;
    page.run_js("document.querySelector('#train-form details').open = true;").await;
    page.fill("train-image-size", "8").await;
    page.fill("train-channels", "8,16").await;
    page.fill("train-layers", "1").await;
}

#[test]
fn training_draws_the_loss_as_it_goes_stops_resumes_and_adds_the_model() {
    studio::run(&[], |page| async move {
        page.open("#train").await;
        fill_tiny_run(&page, "tiny-run", "60").await;
        page.click("#train-start").await;
        page.wait("document.getElementById('train-status').textContent.startsWith('Trained')", "the run to finish", 180).await;
        assert_eq!(page.text("train-status").await, "Trained tiny-run to step 60: it is in the model picker.");
        let points = page.js("Number(document.getElementById('loss-chart').dataset.points)").await.as_u64().unwrap();
        assert!(points >= 10, "the chart got {points} points of 60 steps");
        // The smoothed loss is drawn (its colour is on the canvas).
        let drawn = page
            .js("(() => { const c = document.getElementById('loss-chart'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] === 0x1d && d[i + 1] === 0x4e && d[i + 2] === 0xd8) n++; return n; })()")
            .await;
        assert!(drawn.as_u64().unwrap() > 50, "the smoothed loss line: {drawn} pixels");
        page.wait("document.querySelectorAll('#train-grids img').length >= 1", "a sample grid", 20).await;
        page.wait("[...document.getElementById('model').options].some(o => o.value === 'tiny-run')", "the new model in the picker", 20).await;

        // A long run stopped after a few steps keeps a checkpoint; Resume continues from it.
        fill_tiny_run(&page, "tiny-stop", "100000").await;
        page.click("#train-start").await;
        page.wait("Number(document.getElementById('loss-chart').dataset.points) >= 20", "twenty points", 120).await;
        page.click("#train-stop").await;
        page.wait("document.getElementById('train-status').textContent.startsWith('Stopped')", "the run to stop", 60).await;
        let stopped = page.text("train-status").await;
        let step: u64 = stopped
            .strip_prefix("Stopped tiny-stop at step ")
            .and_then(|r| r.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("the stop names its checkpoint: {stopped}"));
        page.fill("train-steps", &(step + 20).to_string()).await;
        page.click("#train-resume").await;
        page.wait("document.getElementById('train-status').textContent.startsWith('Trained')", "the resumed run to finish", 120).await;
        assert_eq!(page.text("train-status").await, format!("Trained tiny-stop to step {}: it is in the model picker.", step + 20));
        assert!(page.text("train-progress-text").await.starts_with(&format!("step {}/{}", step + 20, step + 20)));
        page.wait("[...document.getElementById('model').options].some(o => o.value === 'tiny-stop')", "the resumed model in the picker", 20).await;
        page.assert_no_problems().await;
    });
}

#[test]
fn an_api_error_appears_next_to_the_control_it_concerns() {
    studio::run(&[], |page| async move {
        page.open("").await;
        page.fill("prompt", "a cat").await;
        page.fill("guidance-scale", "500").await;
        page.click("#generate").await;
        let error = ".field[data-field=\"guidance_scale\"] .error";
        page.wait(&format!("document.querySelector('{error}').textContent !== ''"), "the error next to the guidance scale", 20).await;
        let text = page.js(&format!("document.querySelector('{error}').textContent")).await;
        let text = text.as_str().unwrap();
        assert!(text.contains("guidance_scale") && text.contains("100"), "{text}");
        assert_eq!(page.js("document.getElementById('guidance-scale').getAttribute('aria-invalid')").await, "true");
        assert_eq!(page.js("document.activeElement.id").await, "guidance-scale", "the control at fault gets the focus");
        assert_eq!(page.text("job-status").await, "Not started.");
        assert_eq!(page.js("document.querySelectorAll('#create-form .error:not(:empty)').length").await, 1, "only that control shows an error");

        // Fixed, the error goes away with the next submission.
        page.fill("guidance-scale", "4").await;
        page.fill("steps", "4").await;
        page.fill("count", "1").await;
        page.click("#generate").await;
        wait_status(&page, "Done", 120).await;
        assert_eq!(page.js(&format!("document.querySelector('{error}').textContent")).await, "");

        // Errors of training settings refused at once, and of a job that fails when it runs.
        page.click("#tab-train").await;
        page.fill("train-name", "bad name!").await;
        page.fill("train-steps", "0").await;
        page.click("#train-start").await;
        page.wait("document.querySelector('#train-form .field[data-field=\"steps\"] .error').textContent !== ''", "the error next to the steps", 20).await;
        page.fill("train-steps", "10").await;
        page.click("#train-start").await;
        page.wait("document.querySelector('#train-form .field[data-field=\"name\"] .error').textContent !== ''", "the error next to the run name", 60).await;
        let text = page.js("document.querySelector('#train-form .field[data-field=\"name\"] .error').textContent").await;
        assert!(text.as_str().unwrap().contains("letters, digits"), "{text}");
        page.assert_no_problems().await;
    });
}

#[test]
fn with_an_api_key_the_page_asks_for_it_and_then_works() {
    let key = "0123456789abcdef-studio";
    studio::run(&["--api-key", key], move |page| async move {
        page.client.goto(&format!("{}/", page.base)).await.unwrap();
        page.wait("document.getElementById('job-status').textContent.includes('API key')", "the page to ask for the key", 20).await;
        page.wait("document.querySelector('details.key').open", "the key field to open", 20).await;
        page.fill("api-key", key).await;
        page.keys("\u{E004}").await; // Tab: the field's change event.
        page.wait("document.getElementById('model').options.length > 0", "the models, fetched with the key", 20).await;
        page.fill("prompt", "a star").await;
        page.fill("steps", "5").await;
        page.fill("count", "1").await;
        page.click("#generate").await;
        wait_status(&page, "Done", 120).await;
        // The picture is fetched with the key (an object URL), and shown.
        page.wait("(() => { const i = document.querySelector('#results .thumb img'); return i && i.src.startsWith('blob:') && i.naturalWidth === 16; })()", "the picture", 20).await;
        assert_eq!(page.js("localStorage.getItem('stipple.apiKey')").await, key);
        page.assert_no_problems().await;
    });
}

/// The README's screenshots of the Create view (and its attention maps), the Gallery and
/// the Train view (docs/images/studio-*.png):
/// `cargo test -p stipple --test browser -- --ignored screenshots`.
#[test]
#[ignore = "writes the README's screenshots"]
fn screenshots() {
    studio::run(&[], |page| async move {
        let save = |name: &'static str, png: Vec<u8>| {
            let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/images").join(name);
            std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        };
        page.open("").await;
        for (prompt, seed) in [("smiling face", "11"), ("green tree", "21"), ("blue heart", "31"), ("red apple", "1")] {
            page.fill("prompt", prompt).await;
            page.fill("count", "8").await;
            page.fill("seed", seed).await;
            page.click("#generate").await;
            wait_status(&page, "Done", 120).await;
        }
        page.wait("[...document.querySelectorAll('#results .thumb img')].every(i => i.complete && i.naturalWidth === 16)", "the pictures", 20).await;
        page.wait("!document.getElementById('trajectory-downloads').hidden && document.querySelectorAll('#attention-tokens .token').length >= 2", "the trajectory and the tokens", 20).await;
        page.click("#attention-tokens .token[data-index=\"0\"]").await;
        page.wait("document.getElementById('attention-overlay').dataset.token === '0'", "the map of the first word", 20).await;
        page.run_js("window.scrollTo(0, 0);").await;
        save("studio-create.png", page.client.screenshot().await.unwrap());
        page.run_js("document.getElementById('attention-panel').scrollIntoView();").await;
        save("studio-attention.png", page.client.screenshot().await.unwrap());

        page.click("#tab-gallery").await;
        page.wait("[...document.querySelectorAll('#gallery-grid .thumb img')].filter(i => i.complete && i.naturalWidth === 16).length === 32", "the gallery", 20).await;
        save("studio-gallery.png", page.client.screenshot().await.unwrap());
        page.click("#gallery-grid .thumb:nth-child(3)").await;
        page.wait("document.getElementById('picture').open && document.getElementById('picture-image').naturalWidth === 16", "the picture dialog", 20).await;
        save("studio-picture.png", page.client.screenshot().await.unwrap());
        page.run_js("document.getElementById('picture').close();").await;

        page.click("#tab-train").await;
        fill_tiny_run(&page, "emoji-tiny", "600").await;
        page.fill("train-sample-every", "200").await;
        page.fill("train-lr", "0.002").await;
        page.click("#train-start").await;
        page.wait("document.getElementById('train-status').textContent.startsWith('Trained')", "the run to finish", 300).await;
        page.run_js("window.scrollTo(0, 0);").await;
        save("studio-train.png", page.client.screenshot().await.unwrap());
        page.assert_no_problems().await;
    });
}
