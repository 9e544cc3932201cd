/* docs_blob.c — the files of GET /docs (server/handlers/docs/: the page, its script and its
 * style) compiled into the binary, as openapi_blob.c does for the OpenAPI document: no file
 * is read at run time and nothing is fetched from elsewhere. Each is framed by a _start and
 * an _end symbol and followed by a NUL. The Makefile lists the three files as prerequisites
 * of this object.
 */
#define DOCS_BLOB(name, path)                                                                  \
    __asm__(".section .rodata.backpropd_" #name ",\"a\",@progbits\n"                           \
            ".global backpropd_" #name "_start\n"                                              \
            ".global backpropd_" #name "_end\n"                                                \
            ".type backpropd_" #name "_start, @object\n"                                       \
            ".balign 16\n"                                                                     \
            "backpropd_" #name "_start:\n"                                                     \
            ".incbin \"" path "\"\n"                                                           \
            "backpropd_" #name "_end:\n"                                                       \
            ".byte 0\n"                                                                        \
            ".size backpropd_" #name "_start, . - backpropd_" #name "_start\n"                 \
            ".previous\n")

DOCS_BLOB(docs_html, "server/handlers/docs/docs.html");
DOCS_BLOB(docs_js, "server/handlers/docs/docs.js");
DOCS_BLOB(docs_css, "server/handlers/docs/docs.css");
