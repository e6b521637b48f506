// satcnn view: one Leaflet map over the tiles of an infer run (see satcnn/view/server.py).
"use strict";

const ORDER = ["rgb", "cir", "prob", "mask", "classes", "truth"];
const TRUTH = [["true positive", "#00c853"], ["false positive", "#ff9100"], ["miss", "#2979ff"]];
const SHOWN = new Set(["rgb", "mask"]);
const state = { map: null, overlays: {}, rasters: [], opacity: 0.8 };

function bboxOf(b) { return L.latLngBounds([b[1], b[0]], [b[3], b[2]]); }

function legendRows(box, heading, entries) {
  const title = document.createElement("h2");
  title.textContent = heading;
  box.appendChild(title);
  for (const [name, colour] of entries) {
    const row = document.createElement("div");
    row.className = "legend-row";
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour;
    const label = document.createElement("span");
    label.textContent = name;
    row.append(swatch, label);
    box.appendChild(row);
  }
}

function addLegend(tiles) {
  const box = document.getElementById("legend");
  if (tiles.some((t) => t.layers.some((layer) => layer.id === "truth"))) { legendRows(box, "Against truth", TRUTH); }
  const seen = new Map();
  for (const t of tiles) {
    for (const layer of t.layers) {
      for (const e of layer.legend || []) { if (!seen.has(e.name)) { seen.set(e.name, e.colour); } }
    }
  }
  if (seen.size > 0) { legendRows(box, "Classes", seen); }
}

function scoreText(scores) {
  const keys = ["iou", "f1", "accuracy"].filter((k) => k in scores);
  return keys.map((k) => `${k} ${Number(scores[k]).toFixed(3)}`).join(", ");
}

function addTileList(tiles) {
  const list = document.getElementById("tiles");
  for (const t of tiles) {
    const item = document.createElement("li");
    const scores = scoreText(t.scores || {});
    item.textContent = scores ? `${t.name} (${scores})` : t.name;
    item.dataset.index = String(t.index);
    item.addEventListener("click", () => {
      for (const other of list.children) { other.classList.remove("active"); }
      item.classList.add("active");
      state.map.fitBounds(bboxOf(t.bounds));
    });
    list.appendChild(item);
  }
}

function where(latlng) {
  if (!state.pixel) { return `${latlng.lat.toFixed(6)}, ${latlng.lng.toFixed(6)}`; }
  return `x ${Math.floor(latlng.lng)}, row ${Math.floor(-latlng.lat)} (pixel grid)`;
}

function showPixel(e) {
  const url = `/point?lon=${e.latlng.lng}&lat=${e.latlng.lat}`;
  fetch(url).then((r) => r.json()).then((answer) => {
    const lines = [where(e.latlng)];
    for (const t of answer.tiles) {
      lines.push(t.tile);
      for (const [key, values] of Object.entries(t.values)) {
        let text = values.join(", ");
        if (key === "classes" && t.classes) { text += ` (${t.classes})`; }
        lines.push(`  ${key}: ${text}`);
      }
    }
    document.getElementById("pixel").textContent = lines.join("\n");
    L.popup().setLatLng(e.latlng).setContent(lines.join("<br>")).openOn(state.map);
  });
}

function start(catalog) {
  // No CRS: Leaflet's CRS.Simple, one map unit a raster pixel (x the column, y minus the row).
  state.pixel = Boolean(catalog.pixel);
  const zoom = state.pixel
    ? { minZoom: -catalog.zoom_offset, maxZoom: 6, zoomOffset: catalog.zoom_offset }
    : { maxZoom: 22 };
  const map = L.map("map", state.pixel ? { crs: L.CRS.Simple, minZoom: zoom.minZoom, maxZoom: zoom.maxZoom } : zoom);
  state.map = map;
  if (state.pixel) { document.getElementById("pixel-grid").hidden = false; }
  window.satcnnMap = map;
  document.getElementById("root").textContent = catalog.root;
  if (catalog.basemap) {
    L.tileLayer(catalog.basemap, { maxZoom: 22, maxNativeZoom: 19, attribution: "basemap" }).addTo(map);
  }
  const groups = {};
  for (const t of catalog.tiles) {
    const bounds = bboxOf(t.bounds);
    for (const layer of t.layers) {
      const url = `/tiles/${t.index}/${layer.id}/{z}/{x}/{y}.png`;
      const tl = L.tileLayer(url, { ...zoom, bounds: bounds, opacity: state.opacity });
      state.rasters.push(tl);
      (groups[layer.id] = groups[layer.id] || L.layerGroup()).addLayer(tl);
    }
    for (const v of t.vectors) {
      const group = (groups.vectors = groups.vectors || L.layerGroup());
      fetch(`/vectors/${t.index}/${v.index}.geojson`).then((r) => r.json()).then((data) => {
        group.addLayer(L.geoJSON(data, { style: { color: "#00e5ff", weight: 2 }, pointToLayer: (f, ll) => L.circleMarker(ll, { radius: 3 }) }));
      });
    }
  }
  const overlays = {};
  for (const key of [...ORDER, "vectors"]) {
    if (!groups[key]) { continue; }
    const title = key === "vectors" ? "Vectors (road graph, polygons)" : catalog.titles[key];
    overlays[title] = groups[key];
    if (SHOWN.has(key) || key === "vectors" || (key === "classes" && !groups.mask)) { groups[key].addTo(map); }
  }
  state.overlays = overlays;
  L.control.layers(null, overlays, { collapsed: false }).addTo(map);
  if (!state.pixel) { L.control.scale().addTo(map); }
  let all = null;
  for (const t of catalog.tiles) { all = all ? all.extend(bboxOf(t.bounds)) : bboxOf(t.bounds); }
  map.fitBounds(all);
  addLegend(catalog.tiles);
  addTileList(catalog.tiles);
  const slider = document.getElementById("opacity");
  slider.addEventListener("input", () => {
    state.opacity = Number(slider.value) / 100;
    document.getElementById("opacity-value").textContent = `${slider.value}%`;
    for (const tl of state.rasters) { tl.setOpacity(state.opacity); }
  });
  map.on("click", showPixel);
  document.body.dataset.ready = "true";
}

fetch("/api/catalog").then((r) => r.json()).then(start);
