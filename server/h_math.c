/* h_math.c — TEMPORARY link stub, replaced by its owner. */
#include "routes.h"
#include "server.h"
handler_result h_cost(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_gradient(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_gradient_check(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
