//! Headless Chromium driven over the DevTools protocol (the `headless_chrome` crate), for the
//! tests of the pages `serve` answers. Every console error, uncaught exception and error log
//! entry (a failed load, a Content-Security-Policy refusal) is collected for the tests to check.
//!
//! Chromium is Debian's `chromium` package (`scripts/install-chromium.sh`), or the browser named
//! by `CHROMIUM`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use headless_chrome::protocol::cdp::Log::LogEntryLevel;
use headless_chrome::protocol::cdp::Page::CaptureScreenshotFormatOption;
use headless_chrome::protocol::cdp::Runtime::ConsoleAPICalledEventTypeOption;
use headless_chrome::protocol::cdp::types::Event;
use headless_chrome::{Browser, LaunchOptions, Tab};

/// Where Chromium is: `CHROMIUM`, else the first of `chromium`, `chromium-browser`,
/// `google-chrome` on `PATH`.
///
/// # Panics
/// If there is none, saying how to install it.
pub fn chromium() -> PathBuf {
    if let Some(path) = std::env::var_os("CHROMIUM") {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .flat_map(|dir| {
            ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name))
        })
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "no Chromium on PATH: run scripts/install-chromium.sh (Debian's chromium \
                 package), or set CHROMIUM to a Chromium or Chrome binary"
            )
        })
}

/// One browser with one tab.
pub struct Page {
    // Kept so the browser lives as long as the tab.
    _browser: Browser,
    pub tab: Arc<Tab>,
    problems: Arc<Mutex<Vec<String>>>,
}

impl Page {
    /// Starts headless Chromium (a 1200×1000 window) and opens `url`.
    ///
    /// # Panics
    /// If Chromium does not start or the page does not load.
    pub fn open(url: &str) -> Self {
        let options = LaunchOptions::default_builder()
            .path(Some(chromium()))
            .headless(true)
            // CI runs as root, where Chromium's sandbox cannot start; the page is our own.
            .sandbox(false)
            .window_size(Some((1200, 1000)))
            .idle_browser_timeout(Duration::from_secs(120))
            .build()
            .expect("Chromium launch options");
        let browser = Browser::new(options).expect("Chromium starts");
        let tab = browser.new_tab().expect("a tab");
        let problems = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&problems);
        tab.add_event_listener(Arc::new(move |event: &Event| {
            let problem = match event {
                Event::RuntimeConsoleAPICalled(e)
                    if matches!(
                        e.params.Type,
                        ConsoleAPICalledEventTypeOption::Error
                            | ConsoleAPICalledEventTypeOption::Assert
                    ) =>
                {
                    let args: Vec<String> = e
                        .params
                        .args
                        .iter()
                        .map(|a| {
                            a.description
                                .clone()
                                .or_else(|| a.value.as_ref().map(|v| v.to_string()))
                                .unwrap_or_default()
                        })
                        .collect();
                    Some(format!("console error: {}", args.join(" ")))
                }
                Event::RuntimeExceptionThrown(e) => {
                    let details = &e.params.exception_details;
                    let description = details
                        .exception
                        .as_ref()
                        .and_then(|x| x.description.clone())
                        .unwrap_or_default();
                    Some(format!("uncaught: {} {description}", details.text))
                }
                Event::LogEntryAdded(e) if e.params.entry.level == LogEntryLevel::Error => {
                    let entry = &e.params.entry;
                    Some(format!(
                        "log error: {} ({})",
                        entry.text,
                        entry.url.clone().unwrap_or_default()
                    ))
                }
                _ => None,
            };
            if let Some(problem) = problem {
                sink.lock().expect("problem list").push(problem);
            }
        }))
        .expect("event listener");
        tab.enable_runtime().expect("Runtime domain");
        tab.enable_log().expect("Log domain");
        tab.navigate_to(url)
            .and_then(|t| t.wait_until_navigated())
            .unwrap_or_else(|e| panic!("{url} does not load: {e}"));
        Self {
            _browser: browser,
            tab,
            problems,
        }
    }

    /// The value of a JavaScript expression, which must evaluate to JSON-serialisable data
    /// (or a promise of it).
    ///
    /// # Panics
    /// If it throws.
    pub fn eval(&self, expression: &str) -> serde_json::Value {
        let wrapped = format!("(async () => JSON.stringify(await ({expression})))()");
        let result = self
            .tab
            .evaluate(&wrapped, true)
            .unwrap_or_else(|e| panic!("{expression}: {e}"));
        let text = result
            .value
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| panic!("{expression}: no value ({:?})", result.description));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{expression}: {e}: {text}"))
    }

    /// Waits until the expression is truthy.
    ///
    /// # Panics
    /// After 20 s, with what the page says in `#error` and `#status`, and its problems.
    pub fn wait_for(&self, expression: &str) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            let value = self.eval(&format!("Boolean({expression})"));
            if value == serde_json::Value::Bool(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let said = self.eval(
            "[document.getElementById('error')?.textContent, \
             document.getElementById('status')?.textContent]",
        );
        panic!(
            "waited 20 s for {expression}; the page says {said}; problems: {:?}",
            self.problems()
        );
    }

    /// Sets a `<select>` or range `<input>` and fires the event a person's change would fire.
    pub fn set_value(&self, selector: &str, value: &str, event: &str) {
        let found = self.eval(&format!(
            "(() => {{ const e = document.querySelector({selector:?}); if (!e) return false; \
             e.value = {value:?}; e.dispatchEvent(new Event({event:?}, {{bubbles: true}})); \
             return e.value === {value:?}; }})()"
        ));
        assert_eq!(
            found,
            serde_json::Value::Bool(true),
            "{selector} cannot take {value}"
        );
    }

    /// Chooses `file` in the file input `selector`, as the file dialog would.
    pub fn choose_file(&self, selector: &str, file: &std::path::Path) {
        // Chromium cannot read an upload whose path has `..` in it.
        let file = file
            .canonicalize()
            .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let path = file.to_str().expect("a UTF-8 path");
        self.tab
            .find_element(selector)
            .and_then(|input| input.set_input_files(&[path]).map(|_| ()))
            .unwrap_or_else(|e| panic!("{selector}: {e}"));
    }

    /// The console errors, exceptions and error log entries so far, which are then forgotten.
    pub fn take_problems(&self) -> Vec<String> {
        std::mem::take(&mut *self.problems.lock().expect("problem list"))
    }

    fn problems(&self) -> Vec<String> {
        self.problems.lock().expect("problem list").clone()
    }

    /// A PNG of the whole page.
    pub fn screenshot(&self) -> Vec<u8> {
        self.tab
            .capture_screenshot(CaptureScreenshotFormatOption::Png, None, None, true)
            .expect("screenshot")
    }
}
