#!/usr/bin/env bash
# Opens a report.html in headless Chromium, as a reader's browser would, and fails on a broken page: script
# errors, images that do not load, SVG charts that did not render (no size), a chart point under its legend,
# or a page wider than the window (layout overflow: wide tables must scroll inside their box). Writes a
# screenshot beside the check's output.
# With MAX_HEIGHT_PX set, a page taller than that as it opens (collapsed sections closed) fails too.
# Usage: bash bench/check-report-page.sh REPORT.html [SCREENSHOT.png] [WIDTH]
# Needs Debian's chromium (apt-get install chromium); exits 2 when it is missing.
set -euo pipefail
page=$(readlink -f "${1:?report.html}")
shot=${2:-}
width=${3:-1280}
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then echo "check-report-page: chromium is not installed (apt-get install chromium)" >&2; exit 2; fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The page with a probe appended: it records script errors from the start and, once loaded, measures the page.
{
  printf '<script>window.__errors=[];window.addEventListener("error",function(e){window.__errors.push(String(e.message||e.type))},true);</script>\n'
  cat "$page"
  cat <<'JS'
<script>
window.addEventListener("load", function () {
  var r = {errors: window.__errors, brokenImages: [], emptySvgs: 0, overflowPx: 0, svgs: 0, images: 0};
  // The page as it opens (collapsed sections closed), then every section opened to check what it holds.
  r.heightPx = document.documentElement.scrollHeight;
  document.querySelectorAll("details").forEach(function (d) { d.open = true; });
  document.querySelectorAll("img").forEach(function (i) { r.images++; if (!i.complete || i.naturalWidth === 0) r.brokenImages.push(i.src); });
  document.querySelectorAll("figure svg").forEach(function (s) { r.svgs++; var b = s.getBoundingClientRect(); if (b.width < 50 || b.height < 50) r.emptySvgs++; });
  r.overflowPx = Math.max(0, document.documentElement.scrollWidth - window.innerWidth);
  // A chart carries its title (drawn inside it; its figure names it in aria-label): the same words again in a
  // heading or caption beside it are said twice.
  var inCharts = {};
  document.querySelectorAll("figure[aria-label]").forEach(function (f) { inCharts[f.getAttribute("aria-label").trim()] = true; });
  r.titlesTwice = [];
  document.querySelectorAll("h1,h2,h3,h4,figcaption").forEach(function (h) { var s = h.textContent.trim(); if (inCharts[s]) r.titlesTwice.push(s); });
  // A chart's legend (its border: an unfilled black rectangle) must cover none of its points (circles).
  r.legendCovers = 0;
  document.querySelectorAll("figure svg").forEach(function (s) {
    var num = function (e, a) { return parseFloat(e.getAttribute(a)); };
    s.querySelectorAll('rect[fill="none"][stroke="#000000"]').forEach(function (b) {
      var x = num(b, "x"), y = num(b, "y"), w = num(b, "width"), h = num(b, "height");
      s.querySelectorAll("circle").forEach(function (c) {
        var cx = num(c, "cx"), cy = num(c, "cy"), cr = num(c, "r");
        if (cx + cr > x && cx - cr < x + w && cy + cr > y && cy - cr < y + h) r.legendCovers++;
      });
    });
  });
  var pre = document.createElement("pre"); pre.id = "sharebench-page-check"; pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
});
</script>
JS
} > "$work/page.html"
cp "$page" "$work/original.html"
flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking
  --disable-component-update --disable-sync --user-data-dir="$work/profile" --window-size="$width,900"
  --virtual-time-budget=10000)
"$browser" "${flags[@]}" --dump-dom "file://$work/page.html" 2> "$work/stderr" > "$work/dom.html" || true
result=$(sed -n 's/.*<pre id="sharebench-page-check">\(.*\)<\/pre>.*/\1/p' "$work/dom.html" | sed 's/&quot;/"/g')
if [ -z "$result" ]; then echo "check-report-page: the page never finished loading" >&2; tail -5 "$work/stderr" >&2; exit 1; fi
echo "check-report-page: $page at ${width}px: $result"
if [ -n "$shot" ]; then
  "$browser" "${flags[@]}" --hide-scrollbars --screenshot="$(readlink -f "$(dirname "$shot")")/$(basename "$shot")" "file://$work/original.html" 2>/dev/null || true
fi
python3 - "$result" <<'PY'
import json, os, sys
r = json.loads(sys.argv[1])
problems = []
if r["errors"]: problems.append("script errors: %s" % r["errors"])
if r["brokenImages"]: problems.append("images that did not load: %s" % r["brokenImages"])
if r["emptySvgs"]: problems.append("%d charts rendered empty" % r["emptySvgs"])
if r["overflowPx"] > 0: problems.append("the page is %d px wider than the window" % r["overflowPx"])
if r.get("legendCovers"): problems.append("%d chart points lie under a legend" % r["legendCovers"])
if r.get("titlesTwice"): problems.append("chart titles said twice (in the chart and outside it): %s" % r["titlesTwice"][:3])
limit = int(os.environ.get("MAX_HEIGHT_PX", "0"))
if limit and r["heightPx"] > limit: problems.append("the page opens %d px tall (at most %d)" % (r["heightPx"], limit))
if problems:
    sys.exit("check-report-page: BROKEN: " + "; ".join(problems))
print("check-report-page: ok (%d charts, %d images, no script error, no overflow, %d px tall as it opens)" % (r["svgs"], r["images"], r["heightPx"]))
PY
