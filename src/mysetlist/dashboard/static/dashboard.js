// The dashboard page: draws every panel from the JSON the server rendered into the page,
// then keeps the live panels current over Server-Sent Events. No inline script (CSP).
"use strict";
(function () {
  const doc = JSON.parse(document.getElementById("dashboard-data").textContent);
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const query = "range=" + encodeURIComponent(doc.range) + "&tz=" + encodeURIComponent(doc.timezone);
  const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
  const css = getComputedStyle(document.documentElement);
  const color = (name) => css.getPropertyValue(name).trim();
  const charts = {};

  // ---- helpers ------------------------------------------------------------------------
  const el = (tag, attrs, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  };
  const num = (v, digits) => {
    if (v === null || v === undefined || v === "") return "–";
    const n = Number(v);
    if (!Number.isFinite(n)) return String(v);
    return n.toLocaleString(undefined, { maximumFractionDigits: digits === undefined ? 2 : digits });
  };
  const pct = (v) => (v === null || v === undefined ? "–" : (Number(v) * 100).toFixed(1) + " %");
  const bytes = (v) => {
    let n = Number(v), i = 0;
    const units = ["B", "KB", "MB", "GB", "TB"];
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return n.toFixed(1) + " " + units[i];
  };
  const day = (v) => String(v).slice(0, 10);
  const time = (v) => (v ? new Date(v).toISOString().replace("T", " ").slice(0, 16) + " UTC" : "–");
  const short = (v) => String(v).slice(0, 8);

  function body(name) {
    return document.querySelector("#panel-" + name + " .body");
  }
  function table(columns, rows) {
    const wrap = el("div", { class: "table-wrap" });
    const t = el("table");
    const head = el("tr");
    for (const c of columns) head.appendChild(el("th", c.num ? { class: "num" } : {}, c.label));
    t.appendChild(el("thead")).appendChild(head);
    const tb = el("tbody");
    for (const r of rows) {
      const tr = el("tr");
      for (const c of columns) {
        const v = c.value(r);
        const attrs = c.num ? { class: "num" } : {};
        if (c.status) attrs.class = "status-" + v;
        tr.appendChild(el("td", attrs, v));
      }
      tb.appendChild(tr);
    }
    t.appendChild(tb);
    wrap.appendChild(t);
    return wrap;
  }
  // A table of `rows` under its heading; with `empty`, a paragraph (`emptyAttrs`) saying
  // so instead when there are none.
  function titledTable(container, heading, columns, rows, empty, emptyAttrs) {
    container.appendChild(el("h4", {}, heading));
    if (empty !== undefined && !rows.length) container.appendChild(el("p", emptyAttrs || {}, empty));
    else container.appendChild(table(columns, rows));
  }
  // A table column of a count: the row's `field`, headed by `label` (the field's name).
  function counted(field, label) {
    return { label: label || field, num: true, value: (r) => num(r[field]) };
  }
  function chart(container, name, option, tall) {
    const div = el("div", { class: tall ? "chart tall" : "chart", "data-chart": name });
    container.appendChild(div);
    const base = {
      backgroundColor: "transparent",
      darkMode: dark,
      textStyle: { color: color("--text") },
      title: { textStyle: { color: color("--text"), fontSize: 13 }, left: 0, top: 0 },
      tooltip: { trigger: "axis", confine: true },
      grid: { left: 56, right: 56, top: 48, bottom: 40 },
      legend: { top: 22, type: "scroll", textStyle: { color: color("--muted") } },
    };
    const merged = Object.assign({}, base, option, {
      title: Object.assign({}, base.title, option.title),
      tooltip: Object.assign({}, base.tooltip, option.tooltip),
      // Room for the legend's row between the title and the axis names.
      grid: Object.assign({}, base.grid, option.legend === false ? {} : { top: 76 }, option.grid),
      legend: option.legend === false ? { show: false } : Object.assign({}, base.legend, option.legend),
    });
    const axisStyle = (axis) => Object.assign({
      axisLabel: { color: color("--muted") },
      nameTextStyle: { color: color("--muted") },
      splitLine: { lineStyle: { color: color("--border") } },
    }, axis);
    for (const key of ["xAxis", "yAxis"]) {
      if (Array.isArray(merged[key])) merged[key] = merged[key].map(axisStyle);
      else if (merged[key]) merged[key] = axisStyle(merged[key]);
    }
    const instance = echarts.init(div, null, { renderer: "canvas" });
    instance.setOption(merged);
    charts[name] = charts[name] || [];
    charts[name].push(instance);
    return instance;
  }

  // A chart over time: `yAxes` is one value axis or two (a name, or the axis' options
  // with its name); series with `yAxisIndex: 1` use the second. `extra` adds options.
  function timeChart(container, name, title, xName, yAxes, series, extra) {
    const axes = yAxes.map((y) => Object.assign({ type: "value" }, typeof y === "string" ? { name: y } : y));
    return chart(container, name, Object.assign({
      title: { text: title },
      xAxis: { type: "time", name: xName },
      yAxis: axes.length === 1 ? axes[0] : axes,
      series: series,
    }, extra));
  }
  function clear(name) {
    for (const c of charts[name] || []) c.dispose();
    charts[name] = [];
    const b = body(name);
    b.replaceChildren();
    return b;
  }

  // ---- panels -------------------------------------------------------------------------
  const draw = {
    realtime(b, d) {
      const lastMinute = (d.events_per_minute || []).slice(-1)[0];
      const perMinute = lastMinute ? Object.values(lastMinute.events).reduce((a, x) => a + x, 0) : 0;
      const tiles = [
        ["concurrent_users", "concurrent users (5 min)", num(d.concurrent_users)],
        ["active_sessions", "active sessions", num(d.active_sessions)],
        ["votes_last_hour", "votes / hour", num(d.votes_last_hour)],
        ["events_last_hour", "events / hour",
          num(Object.values(d.events_last_hour || {}).reduce((a, x) => a + x, 0))],
        ["events_per_minute", "events / minute (now)", num(perMinute)],
        ["active_shows", "active shows (1 h)", num((d.active_shows || []).length)],
        ["api_p50_ms", "API p50 (ms)", d.api_p50_ms === null ? "–" : "≤ " + num(d.api_p50_ms)],
        ["api_p99_ms", "API p99 (ms)", d.api_p99_ms === null ? "–" : "≤ " + num(d.api_p99_ms)],
        ["api_error_rate", "API 5xx rate", pct(d.api_error_rate)],
        ["ingest_lag_seconds", "ingest lag (s)", num(d.ingest_lag_seconds, 1)],
      ];
      const grid = el("div", { class: "tiles" });
      for (const [key, label, value] of tiles) {
        const tile = el("div", { class: "tile", "data-metric": key });
        tile.appendChild(el("div", { class: "value", "data-testid": "live-" + key }, value));
        tile.appendChild(el("div", { class: "label" }, label));
        grid.appendChild(tile);
      }
      b.appendChild(grid);
      const minutes = (d.events_per_minute || []).map((m) => [m.minute * 1000,
        Object.values(m.events).reduce((a, x) => a + x, 0)]);
      timeChart(b, "realtime", "Events per minute, last hour", "UTC", ["events / min"],
        [{ name: "events", type: "bar", data: minutes }], { legend: false });
    },
    realtime_hourly(b, d) {
      timeChart(b, "realtime_hourly", "Last 24 hours", "UTC", ["events / h", "users / votes"], [
        { name: "events", type: "line", data: d.map((r) => [r.hour, r.events]) },
        { name: "active users", type: "line", yAxisIndex: 1, data: d.map((r) => [r.hour, r.users]) },
        { name: "votes", type: "bar", yAxisIndex: 1, data: d.map((r) => [r.hour, r.votes]) },
      ]);
    },
    engagement_distribution(b, d) {
      chart(b, "engagement_distribution", {
        title: { text: num(d.users, 0) + " active users, mean score " + num(d.mean, 3) },
        xAxis: { type: "category", name: "score", data: d.buckets.map((x) => x.from + "–" + x.to) },
        yAxis: { type: "value", name: "users" },
        legend: false,
        series: [{ name: "users", type: "bar", data: d.buckets.map((x) => x.users) }],
      });
    },
    activity_heatmap(b, d) {
      const days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
      const max = Math.max(1, ...d.cells.map((c) => c.events));
      chart(b, "activity_heatmap", {
        title: { text: "Events by hour (" + d.timezone + ") since " + time(d.covers_from) },
        tooltip: { trigger: "item", formatter: (p) => days[p.value[1]] + " " + p.value[0] + ":00 — " +
          num(p.value[2]) + " events" },
        grid: { left: 44, right: 16, bottom: 70 },
        xAxis: { type: "category", name: "hour", data: [...Array(24).keys()] },
        yAxis: { type: "category", data: days, inverse: true },
        visualMap: { min: 0, max: max, calculable: true, orient: "horizontal", left: "center",
          bottom: 0, textStyle: { color: color("--muted") }, text: ["events", ""] },
        legend: false,
        series: [{ name: "events", type: "heatmap", data: d.cells.map((c) => [c.hour, c.dow, c.events]) }],
      }, true);
    },
    cohort_retention(b, d) {
      const cohorts = d.map((c) => day(c.cohort_week));
      const cells = [];
      d.forEach((c, i) => c.weeks.forEach((w) => cells.push([w.week, i, Math.round(w.retention * 1000) / 10,
        w.active_users, c.cohort_size])));
      chart(b, "cohort_retention", {
        title: { text: "Share of each weekly signup cohort active in week n" },
        tooltip: { trigger: "item", formatter: (p) => "cohort " + cohorts[p.value[1]] + ", week " +
          p.value[0] + ": " + p.value[2] + " % (" + p.value[3] + " of " + p.value[4] + ")" },
        grid: { left: 90, right: 16, bottom: 70 },
        xAxis: { type: "category", name: "week", data: [...Array(13).keys()] },
        yAxis: { type: "category", name: "cohort", data: cohorts },
        visualMap: { min: 0, max: 100, calculable: true, orient: "horizontal", left: "center",
          bottom: 0, textStyle: { color: color("--muted") }, text: ["% active", ""] },
        legend: false,
        series: [{ name: "retention %", type: "heatmap", data: cells,
          label: { show: true, formatter: (p) => p.value[2], fontSize: 10 } }],
      }, true);
    },
    active_users(b, d) {
      timeChart(b, "active_users", "Active users per day", "day",
        ["users", { name: "stickiness", min: 0, max: 1 }], [
          { name: "DAU", type: "line", data: d.map((r) => [r.day, r.dau]) },
          { name: "WAU", type: "line", data: d.map((r) => [r.day, r.wau]) },
          { name: "MAU", type: "line", data: d.map((r) => [r.day, r.mau]) },
          { name: "stickiness (DAU/MAU)", type: "line", yAxisIndex: 1, lineStyle: { type: "dashed" },
            data: d.map((r) => [r.day, r.stickiness]) },
        ]);
    },
    top_users(b, d) {
      b.appendChild(table([
        { label: "user", value: (r) => r.display_name || short(r.user_id) },
        { label: "score", num: true, value: (r) => num(r.engagement_score, 3) },
        counted("active_days", "active days"),
        counted("sessions"),
        counted("votes"),
        { label: "vote accuracy", num: true, value: (r) => pct(r.voting_accuracy) },
        { label: "last active", value: (r) => day(r.last_active_day) },
      ], d));
    },
    churn_risk(b, d) {
      const buckets = d.buckets || {};
      chart(b, "churn_risk", {
        title: { text: "As of " + day(d.as_of) + ": high " + num(buckets.high || 0) + ", medium " +
          num(buckets.medium || 0) + ", low " + num(buckets.low || 0) + " (model v" + d.model_version + ")" },
        xAxis: { type: "category", name: "P(churn)", data: d.histogram.map((x) => x.from + "–" + x.to) },
        yAxis: { type: "value", name: "users" },
        legend: false,
        series: [{ name: "users", type: "bar", data: d.histogram.map((x) => x.users) }],
      });
      titledTable(b, "Most at risk", [
        { label: "user", value: (r) => r.display_name || short(r.user_id) },
        { label: "P(churn)", num: true, value: (r) => pct(r.probability) },
        { label: "risk", value: (r) => r.risk_bucket },
        { label: "why", value: (r) => (Array.isArray(r.top_features) ? r.top_features : Object.keys(r.top_features || {}))
            .slice(0, 3).map((f) => (typeof f === "string" ? f : f.feature || f.name || JSON.stringify(f))).join(", ") },
      ], d.most_at_risk);
    },
    trending_artists(b, d) {
      const rows = d.artists.slice().reverse();
      chart(b, "trending_artists", {
        title: { text: "On " + day(d.day) + " (0 = flat, 1 = doubled)" },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        grid: { left: 140 },
        xAxis: { type: "value", name: "growth" },
        yAxis: { type: "category", data: rows.map((r) => r.name) },
        legend: false,
        series: [{ name: "trending score", type: "bar", data: rows.map((r) => r.trending_score) }],
      }, true);
    },
    top_shows(b, d) {
      b.appendChild(table([
        { label: "show", value: (r) => r.artist + " · " + r.city },
        { label: "date", value: (r) => day(r.starts_at) },
        counted("engagement"),
        counted("views"),
        counted("votes"),
        counted("shares"),
      ], d));
    },
    genre_trends(b, d) {
      timeChart(b, "genre_trends", "Top genres by activity", "day", ["activity / day"],
        d.genres.map((g) => ({ name: g.genre, type: "line", showSymbol: false,
          data: g.points.map((p) => [p.day, p.activity]) })));
    },
    voting(b, d) {
      timeChart(b, "voting", "Votes per day and per voted show", "day", ["votes", "votes / show"], [
        { name: "votes", type: "bar", data: d.per_day.map((r) => [r.day, r.votes]) },
        { name: "votes per voted show", type: "line", yAxisIndex: 1,
          data: d.per_day.map((r) => [r.day, r.votes_per_show]) },
      ]);
      if (!d.accuracy.length) {
        b.appendChild(el("p", { class: "empty" }, "no show of this range is scored yet: the nightly ETL scores " +
          "predictions once a show's setlist is in (try a longer range)"));
        return;
      }
      chart(b, "voting-accuracy", {
        title: { text: "Setlist accuracy of " + d.accuracy.map((a) => a.predictor + " (" + a.shows + " shows)").join(", ") },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        xAxis: { type: "category", data: ["F1@N", "NDCG@N", "recall@10"] },
        yAxis: { type: "value", name: "score 0–1", min: 0, max: 1 },
        series: d.accuracy.map((a) => ({ name: a.predictor, type: "bar",
          data: [a.f1, a.ndcg, a.recall_at_10] })),
      });
    },
    notifications(b, d) {
      const t = d.totals;
      const grid = el("div", { class: "tiles" });
      for (const [label, value] of [["sent", num(t.sent)], ["delivered", num(t.delivered)],
        ["opened", num(t.opened)], ["clicked", num(t.clicked)], ["bounce rate", pct(d.bounce_rate)],
        ["complaint rate", pct(d.complaint_rate)]]) {
        const tile = el("div", { class: "tile" });
        tile.appendChild(el("div", { class: "value" }, value));
        tile.appendChild(el("div", { class: "label" }, label));
        grid.appendChild(tile);
      }
      b.appendChild(grid);
      chart(b, "notifications", {
        title: { text: "By channel" },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
        xAxis: { type: "category", data: d.by_channel.map((c) => c.channel) },
        yAxis: { type: "value", name: "messages" },
        series: ["sent", "delivered", "opened", "clicked"].map((k) => ({ name: k, type: "bar",
          data: d.by_channel.map((c) => c[k]) })),
      });
      titledTable(b, "By template", [
        { label: "template", value: (r) => r.template },
        counted("sent"),
        counted("delivered"),
        counted("opened"),
        counted("clicked"),
        counted("bounced"),
      ], d.by_template);
      titledTable(b, "Providers", [
        { label: "provider", value: (r) => r.provider },
        counted("sent"),
        counted("failed"),
        counted("bounced"),
        counted("retrying"),
        { label: "health", value: (r) => (r.sent && r.failed / (r.sent + r.failed) > 0.05 ? "degraded" : "ok") },
      ], d.providers, "no delivery through a provider in this range", { class: "empty" });
    },
    etl_runs(b, d) {
      b.appendChild(table([
        { label: "run", num: true, value: (r) => r.id },
        { label: "status", status: true, value: (r) => r.status },
        { label: "trigger", value: (r) => r.trigger },
        { label: "days", value: (r) => (r.from_day ? day(r.from_day) + " → " + day(r.to_day) : r.mode) },
        { label: "progress", value: (r) => r.days_done + "/" + r.days_total + (r.current_step ? " " + r.current_step : "") },
        { label: "duration (s)", num: true, value: (r) => (r.duration_ms === null ? "–" : num(r.duration_ms / 1000, 1)) },
        { label: "checks", value: (r) => r.checks_status + (r.checks_failed ? " (" + r.checks_failed + " failed)" : "") },
        { label: "started", value: (r) => time(r.started_at || r.created_at) },
      ], d));
    },
    job_queue(b, d) {
      titledTable(b, "Queues (now)", [
        { label: "queue", value: (r) => r.queue },
        counted("waiting"),
        counted("due"),
        counted("running"),
        counted("failed"),
      ], d.queues, "no job waiting, running or failed");
      titledTable(b, "Background runs in the range", [
        { label: "task", value: (r) => r.task },
        counted("runs"),
        counted("failed"),
        { label: "p50 (ms)", num: true, value: (r) => num(r.p50_ms, 0) },
        { label: "last", value: (r) => time(r.last_started_at) },
        { label: "last error", value: (r) => (r.last_error || "").slice(0, 80) },
      ], d.tasks);
    },
    database(b, d) {
      const rows = d.largest.slice().reverse();
      chart(b, "database", {
        title: { text: "Database: " + bytes(d.database_bytes) },
        tooltip: { trigger: "axis", axisPointer: { type: "shadow" },
          valueFormatter: (v) => num(v, 1) + " MB" },
        grid: { left: 230 },
        xAxis: { type: "value", name: "MB" },
        yAxis: { type: "category", data: rows.map((r) => r.relation + (r.partition ? " (partition)" : "")) },
        legend: false,
        series: [{ name: "size", type: "bar", data: rows.map((r) => Math.round(r.bytes / 1048576 * 10) / 10) }],
      }, true);
    },
    models(b, d) {
      b.appendChild(table([
        { label: "model", value: (r) => r.name },
        { label: "version", num: true, value: (r) => r.version },
        { label: "active", value: (r) => (r.active ? "yes" : "") },
        { label: "metric", value: (r) => r.primary_metric },
        { label: "value", num: true, value: (r) => num(r.primary_value, 4) },
        { label: "trained", value: (r) => time(r.trained_at) },
      ], d));
    },
    outbox(b, d) {
      b.appendChild(el("p", {}, num(d.count) + " messages written in this range; the latest:"));
      b.appendChild(table([
        { label: "written", value: (r) => time(r.sent_at) },
        { label: "type", value: (r) => r.type },
        { label: "file", value: (r) => r.file },
      ], d.messages));
    },
    security(b, d) {
      const t = d.totals;
      const labels = { auth_failed: "failed authentications", forbidden: "refusals (403)",
        rate_limited: "rate-limit hits", webhook_signature: "webhook signature failures" };
      const grid = el("div", { class: "tiles" });
      for (const [key, label, value] of [
        ["auth_failed", "failed auth (401)", t.auth_failed], ["forbidden", "refused (403)", t.forbidden],
        ["rate_limited", "rate-limited (429)", t.rate_limited],
        ["webhook_signature", "bad webhook signatures", t.webhook_signature],
        ["alerts", "alerts", t.alerts], ["exports", "GDPR exports", t.exports],
        ["erasures_requested", "erasures requested", t.erasures_requested],
        ["erasures_done", "erasures done", t.erasures_done]]) {
        const tile = el("div", { class: "tile", "data-metric": key });
        tile.appendChild(el("div", { class: "value", "data-testid": "security-" + key }, num(value)));
        tile.appendChild(el("div", { class: "label" }, label));
        grid.appendChild(tile);
      }
      b.appendChild(grid);
      const kinds = Object.keys(labels).filter((k) => d.over_time.some((r) => r.kind === k));
      if (kinds.length) {
        chart(b, "security", {
          title: { text: "Security events per " + d.bucket + " (UTC)" },
          tooltip: { trigger: "axis", valueFormatter: (v) => num(v) + " events" },
          // The whole range on the axis, so a burst reads as a burst, not as the norm.
          xAxis: { type: "time", name: "UTC", min: d.since, max: Date.now() },
          yAxis: { type: "value", name: "events / " + d.bucket, minInterval: 1 },
          series: kinds.map((k) => ({ name: labels[k], type: "bar", stack: "events", barMaxWidth: 16,
            data: d.over_time.filter((r) => r.kind === k).map((r) => [r.at, r.events]) })),
        });
        titledTable(b, "By source", [
          { label: "kind", value: (r) => labels[r.kind] || r.kind },
          { label: "source", value: (r) => r.source },
          counted("events"),
          { label: "last", value: (r) => time(r.last_at) },
        ], d.by_source);
      }
      titledTable(b, "Recent alerts", [
        { label: "when", value: (r) => time(r.at) },
        { label: "kind", value: (r) => labels[r.kind] || r.kind },
        { label: "source", value: (r) => r.source },
        { label: "threshold / min", num: true, value: (r) => num(r.per_minute) },
      ], d.recent_alerts, "no alert in this range");
    },
  };

  function render(name, panel) {
    const b = clear(name);
    const article = document.getElementById("panel-" + name);
    article.dataset.state = panel.error ? "error" : panel.empty ? "empty" : "ready";
    if (panel.error) {
      b.appendChild(el("p", { class: "error" }, "This panel failed: " + panel.error));
      return;
    }
    if (panel.empty) {
      b.appendChild(el("p", { class: "empty" }, panel.empty));
      if (name !== "realtime") return;
    }
    try {
      draw[name](b, panel.data);
    } catch (err) {
      console.warn("panel " + name + " could not be drawn", err);
      b.appendChild(el("p", { class: "error" }, "This panel could not be drawn: " + err.message));
    }
  }

  for (const [name, panel] of Object.entries(doc.panels)) render(name, panel);
  window.addEventListener("resize", () => Object.values(charts).flat().forEach((c) => c.resize()));

  // ---- live updates -------------------------------------------------------------------
  const status = document.getElementById("live-status");
  const source = new EventSource("/api/analytics/dashboard/stream?" + query);
  source.addEventListener("open", () => { status.dataset.state = "open"; status.textContent = "live"; });
  source.addEventListener("error", () => { status.dataset.state = "error"; status.textContent = "live: reconnecting"; });
  source.addEventListener("panel", (event) => {
    const message = JSON.parse(event.data);
    render(message.name, message.panel);
  });

  // ---- ETL buttons --------------------------------------------------------------------
  const message = document.getElementById("etl-message");
  async function etl(method) {
    message.textContent = "…";
    const response = await fetch("/api/analytics/etl", {
      method: method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf },
    });
    const answer = await response.json().catch(() => ({}));
    message.textContent = response.ok ? "run " + answer.run_id + ": " + answer.status
      : answer.detail || answer.title || "failed (" + response.status + ")";
  }
  document.getElementById("run-etl").addEventListener("click", () => etl("POST"));
  document.getElementById("cancel-etl").addEventListener("click", () => etl("DELETE"));
})();
