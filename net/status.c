/*
 * What the status server says (net/http.c serves it): every METRICS_PROVIDER
 * value as Prometheus text exposition format 0.0.4 (/metrics) or JSON
 * (/status.json, with identity and the log tail), and one self-contained
 * HTML page (/) that polls the JSON every two seconds and shows rates.
 * The same collection feeds all three, so they always agree.
 */
#include "net/status.h"
#include "net/net.h"
#include "kernel/kernel.h"
#include "kernel/kprintf.h"
#include "kernel/kstring.h"
#include "kernel/metrics.h"
#include "kernel/mm.h"
#include "kernel/realtime.h"
#include "kernel/civil.h"
#include "kernel/time.h"

#define STATUS_LOG_LINES 40

/* ---- an append-only text buffer ---- */

void sbuf_add(struct sbuf *b, const char *fmt, ...)
{
	if (b->len >= b->cap)
		return;
	va_list ap;
	va_start(ap, fmt);
	int n = kvsnprintf(b->buf + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= b->cap - b->len) {
		b->len = b->cap;
		b->truncated = true;
	} else {
		b->len += (size_t)n;
	}
}

/* value / 10^decimals as decimal text, e.g. 1234567 with 6 -> "1.234567". */
static void sbuf_fixed(struct sbuf *b, int64_t v, unsigned decimals)
{
	uint64_t p = 1;
	for (unsigned i = 0; i < decimals; i++)
		p *= 10;
	const char *sign = v < 0 ? "-" : "";
	uint64_t a = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
	if (!decimals)
		sbuf_add(b, "%s%llu", sign, (unsigned long long)a);
	else
		sbuf_add(b, "%s%llu.%0*llu", sign, (unsigned long long)(a / p), (int)decimals,
			 (unsigned long long)(a % p));
}

/* A string inside double quotes, for Prometheus label values and JSON:
 * backslash, quote and control characters escaped. */
static void sbuf_quoted(struct sbuf *b, const char *s, bool json)
{
	sbuf_add(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '\\' || c == '"')
			sbuf_add(b, "\\%c", c);
		else if (c == '\n')
			sbuf_add(b, "\\n");
		else if (c < 0x20 || c == 0x7f)
			sbuf_add(b, json ? "\\u%04x" : " ", c);
		else
			sbuf_add(b, "%c", c);
	}
	sbuf_add(b, "\"");
}

/* ---- Prometheus ---- */

struct prom_sink {
	struct metric_sink sink;
	struct sbuf *b;
	const char *last_name;       /* HELP/TYPE once per family */
};

static void prom_emit(struct metric_sink *s, const char *name, enum metric_type type, const char *help,
		      const char *lk, const char *lv, int64_t value, unsigned decimals)
{
	struct prom_sink *p = (struct prom_sink *)s;
	if (!p->last_name || strcmp(p->last_name, name)) {
		sbuf_add(p->b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name,
			 type == METRIC_COUNTER ? "counter" : "gauge");
		p->last_name = name;
	}
	sbuf_add(p->b, "%s", name);
	if (lk) {
		sbuf_add(p->b, "{%s=", lk);
		sbuf_quoted(p->b, lv, false);
		sbuf_add(p->b, "}");
	}
	sbuf_add(p->b, " ");
	sbuf_fixed(p->b, value, decimals);
	sbuf_add(p->b, "\n");
}

void status_metrics_text(struct sbuf *b)
{
	struct prom_sink p = { { prom_emit, NULL }, b, NULL };
	metrics_collect(&p.sink);
}

/* ---- JSON ---- */

struct json_sink {
	struct metric_sink sink;
	struct sbuf *b;
	unsigned n;
};

static void json_emit(struct metric_sink *s, const char *name, enum metric_type type, const char *help,
		      const char *lk, const char *lv, int64_t value, unsigned decimals)
{
	(void)help;
	struct json_sink *j = (struct json_sink *)s;
	sbuf_add(j->b, "%s\n  {\"name\":\"%s\",\"type\":\"%s\"", j->n++ ? "," : "", name,
		 type == METRIC_COUNTER ? "counter" : "gauge");
	if (lk) {
		sbuf_add(j->b, ",\"label\":{\"%s\":", lk);
		sbuf_quoted(j->b, lv, true);
		sbuf_add(j->b, "}");
	}
	sbuf_add(j->b, ",\"value\":");
	sbuf_fixed(j->b, value, decimals);
	sbuf_add(j->b, "}");
}

void status_json(struct sbuf *b)
{
	char when[48];
	civil_format(when, sizeof(when), realtime_ns());
	sbuf_add(b, "{\"hostname\":");
	sbuf_quoted(b, net_hostname(), true);
	sbuf_add(b, ",\"version\":\"%s\",\"time\":\"%s\",\"uptime_s\":%llu,\"metrics\":[", KERNEL_VERSION, when,
		 (unsigned long long)(time_ns() / NS_PER_S));
	struct json_sink j = { { json_emit, NULL }, b, 0 };
	metrics_collect(&j.sink);
	sbuf_add(b, "\n],\"log\":[");
	char *log = kmalloc(LOG_RING_SIZE);
	if (log) {
		size_t n = log_read(log, LOG_RING_SIZE);
		size_t start = n;
		for (unsigned lines = 0; start > 0 && lines <= STATUS_LOG_LINES; start--)
			if (log[start - 1] == '\n')
				lines++;
		if (start < n && log[start] == '\n')
			start++;
		bool first = true;
		while (start < n) {
			size_t end = start;
			while (end < n && log[end] != '\n')
				end++;
			log[end] = 0;
			sbuf_add(b, "%s\n  ", first ? "" : ",");
			sbuf_quoted(b, log + start, true);
			first = false;
			start = end + 1;
		}
		kfree(log);
	}
	sbuf_add(b, "]}\n");
}

/* ---- the page ---- */

static const char status_page[] =
"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
"<title>appliance status</title>\n<style>\n"
"body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}\n"
"h1{font-size:1.3em;margin:0 0 .2em}h2{font-size:1.05em;margin:1.2em 0 .4em}\n"
"table{border-collapse:collapse;background:#fff}td,th{border:1px solid #ddd;padding:.25em .6em;"
"text-align:right;font-variant-numeric:tabular-nums}th{background:#eee}td:first-child,th:first-child"
"{text-align:left}\n#log{background:#111;color:#ddd;padding:.6em;font-size:.8em;max-height:24em;"
"overflow:auto;white-space:pre-wrap}\n.err{color:#b00}\n</style></head><body>\n"
"<h1 id=\"host\">appliance</h1><div id=\"meta\">loading&hellip;</div><div id=\"err\" class=\"err\"></div>\n"
"<h2>Disks</h2><table id=\"disks\"></table>\n<h2>Filesystems</h2><table id=\"fs\"></table>\n<h2>Network</h2><table id=\"nics\"></table>\n"
"<h2>Memory</h2><table id=\"mem\"></table>\n<h2>Log</h2><div id=\"log\"></div>\n"
"<script>\n"
"'use strict';let prev=null;\n"
"const q=new URLSearchParams(location.search).get('token');\n"
"function url(p){return q?p+'?token='+encodeURIComponent(q):p}\n"
"function byLabel(ms,prefix,key){const o={};for(const m of ms){if(!m.name.startsWith(prefix)||!m.label)continue;"
"const k=m.label[key];(o[k]=o[k]||{})[m.name.slice(prefix.length)]=m.value}return o}\n"
"function one(ms,n){const m=ms.find(x=>x.name===n);return m?m.value:0}\n"
"function sz(b){const u=['B','KiB','MiB','GiB','TiB'];let i=0;while(b>=1024&&i<4){b/=1024;i++}"
"return (i?b.toFixed(1):b)+' '+u[i]}\n"
"function rate(cur,old,dt,f){return old&&dt>0?Math.max(0,(cur[f]-old[f])/dt):0}\n"
"function table(id,head,rows){const t=document.getElementById(id);t.textContent='';"
"const h=t.insertRow();for(const c of head){const th=document.createElement('th');th.textContent=c;h.appendChild(th)}"
"for(const r of rows){const tr=t.insertRow();for(const c of r){tr.insertCell().textContent=c}}}\n"
"async function tick(){try{const r=await fetch(url('/status.json'),{cache:'no-store'});"
"if(!r.ok)throw new Error('HTTP '+r.status);const s=await r.json();const now=s.uptime_s;"
"const dt=prev?now-prev.t:0;const disks=byLabel(s.metrics,'appliance_disk_','disk');"
"const nics=byLabel(s.metrics,'appliance_nic_','nic');const fss=byLabel(s.metrics,'appliance_fs_','mount');\n"
"document.getElementById('host').textContent=s.hostname;\n"
"document.getElementById('meta').textContent='version '+s.version+' \\u00b7 '+s.time+' \\u00b7 up '+now+' s';\n"
"table('disks',['disk','size','read/s','written/s','reads','writes','errors','p50 ms','p99 ms'],"
"Object.entries(disks).map(([n,d])=>{const o=prev&&prev.disks[n];return[n,sz(d.size_bytes),"
"sz(rate(d,o,dt,'read_bytes_total'))+'/s',sz(rate(d,o,dt,'written_bytes_total'))+'/s',d.reads_total,"
"d.writes_total,d.errors_total,(d.latency_p50_seconds*1e3).toFixed(3),(d.latency_p99_seconds*1e3).toFixed(3)]}));\n"
"table('fs',['mount','size','used','free','use','inodes'],Object.entries(fss).map(([n,f])=>["
"'/'+n,sz(f.size_bytes),sz(f.size_bytes-f.free_bytes),sz(f.free_bytes),"
"(f.size_bytes?Math.round(100*(f.size_bytes-f.free_bytes)/f.size_bytes):0)+'%',f.inodes]));\n"
"table('nics',['nic','link','rx/s','tx/s','rx packets','tx packets','drops','errors'],"
"Object.entries(nics).map(([n,d])=>{const o=prev&&prev.nics[n];return[n,d.up?'up':'down',"
"sz(rate(d,o,dt,'receive_bytes_total'))+'/s',sz(rate(d,o,dt,'transmit_bytes_total'))+'/s',"
"d.receive_packets_total,d.transmit_packets_total,d.receive_drops_total+d.transmit_drops_total,d.errors_total]}));\n"
"table('mem',['what','bytes'],[['total',sz(one(s.metrics,'appliance_memory_total_bytes'))],"
"['free',sz(one(s.metrics,'appliance_memory_free_bytes'))],['heap',sz(one(s.metrics,'appliance_heap_used_bytes'))],"
"['page cache',sz(one(s.metrics,'appliance_pagecache_cached_bytes'))],"
"['page cache dirty',sz(one(s.metrics,'appliance_pagecache_dirty_bytes'))]]);\n"
"const lg=document.getElementById('log');lg.textContent=s.log.join('\\n');lg.scrollTop=lg.scrollHeight;\n"
"document.getElementById('err').textContent='';prev={t:now,disks,nics}}\n"
"catch(e){document.getElementById('err').textContent='status unavailable: '+e.message}}\n"
"tick();setInterval(tick,2000);\n"
"</script></body></html>\n";

const char *status_html(size_t *len)
{
	*len = sizeof(status_page) - 1;
	return status_page;
}
