/* h_jobs.c — TEMPORARY link stub, replaced by its owner. */
#include "routes.h"
#include "server.h"
handler_result h_jobs_create(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_jobs_list(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_jobs_get(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_jobs_cost(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_jobs_weights(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_jobs_gradient(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_jobs_events(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_jobs_predict(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_jobs_cancel(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
handler_result h_jobs_delete(server *s, req *r) { (void)s; return http_reply_problem(r, 501, "not implemented yet"); }
