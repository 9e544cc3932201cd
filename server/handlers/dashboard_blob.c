/* dashboard_blob.c — the dashboard's files (server/dashboard/) compiled into the binary, served
 * at GET / and GET /ui/{asset} by h_dashboard.c, so the server reads no file at run time and
 * needs no network (no CDN). Like openapi_blob.c: .incbin pastes each file's bytes between a
 * _start and an _end symbol (a NUL follows). Paths are relative to the repository root, where
 * make runs; the Makefile lists every file of server/dashboard as a prerequisite of this object.
 * Adding a file = one BLOB line here and one row in h_dashboard.c's table.
 */
#define BLOB(sym, path)                                                                        \
    __asm__(".section .rodata.backpropd_" #sym ",\"a\",@progbits\n"                            \
            ".global backpropd_" #sym "_start\n"                                               \
            ".global backpropd_" #sym "_end\n"                                                 \
            ".type backpropd_" #sym "_start, @object\n"                                        \
            ".balign 16\n"                                                                     \
            "backpropd_" #sym "_start:\n"                                                      \
            ".incbin \"" path "\"\n"                                                           \
            "backpropd_" #sym "_end:\n"                                                        \
            ".byte 0\n"                                                                        \
            ".size backpropd_" #sym "_start, . - backpropd_" #sym "_start\n"                   \
            ".previous\n")

BLOB(ui_index_html, "server/dashboard/index.html");
BLOB(ui_style_css, "server/dashboard/style.css");
BLOB(ui_icon_svg, "server/dashboard/icon.svg");
BLOB(ui_app_js, "server/dashboard/app.js");
BLOB(ui_api_js, "server/dashboard/api.js");
BLOB(ui_chart_js, "server/dashboard/chart.js");
BLOB(ui_jobs_js, "server/dashboard/jobs.js");
BLOB(ui_results_js, "server/dashboard/results.js");
BLOB(ui_draw_js, "server/dashboard/draw.js");
BLOB(ui_dom_js, "server/dashboard/dom.js");
