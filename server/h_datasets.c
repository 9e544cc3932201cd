/* h_datasets.c — TEMPORARY link stub, replaced by its owner. */
#include "routes.h"
#include "server.h"
handler_result h_datasets_create(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_datasets_list(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_datasets_get(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_datasets_delete(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
