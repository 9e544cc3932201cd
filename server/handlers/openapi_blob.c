/* openapi_blob.c — api/openapi.yaml compiled into the binary (served at GET /openapi.yaml),
 * so the server never reads files at run time. .incbin pastes the file's bytes between two
 * symbols; a NUL follows so it is also a C string. The path is relative to the repository
 * root, where make runs; the Makefile lists api/openapi.yaml as a prerequisite of this
 * object, so editing the document rebuilds it.
 */
__asm__(".section .rodata.backpropd_openapi,\"a\",@progbits\n"
        ".global backpropd_openapi_start\n"
        ".global backpropd_openapi_end\n"
        ".type backpropd_openapi_start, @object\n"
        ".balign 16\n"
        "backpropd_openapi_start:\n"
        ".incbin \"api/openapi.yaml\"\n"
        "backpropd_openapi_end:\n"
        ".byte 0\n"
        ".size backpropd_openapi_start, . - backpropd_openapi_start\n"
        ".previous\n");
