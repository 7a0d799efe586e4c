#ifndef STOCKADE_CLUA_SHIM_H
#define STOCKADE_CLUA_SHIM_H
// Lua 5.1, the version Redis embeds for scripting: the simulator runs the node's Redis scripts in
// it, over a simulated keyspace. Only tests and the simulator link it; the node does not.
#include <lua5.1/lua.h>
#include <lua5.1/lauxlib.h>
#include <lua5.1/lualib.h>

// A host function: reads its arguments from the stack and pushes its results. Returns how many
// results it pushed, or -1 after pushing an error message, which the trampoline raises: the
// raise (a longjmp) then crosses only C and Lua frames, never Swift ones.
typedef int (*stockade_lua_host)(lua_State *L, void *context, int variant);

static int stockade_lua_trampoline(lua_State *L) {
    stockade_lua_host host = (stockade_lua_host)lua_touserdata(L, lua_upvalueindex(1));
    void *context = lua_touserdata(L, lua_upvalueindex(2));
    int variant = (int)lua_tointeger(L, lua_upvalueindex(3));
    int results = host(L, context, variant);
    if (results < 0) return lua_error(L);
    return results;
}

// Sets table[name] for the table on top of the stack to a closure calling `host` with
// `context` and `variant`.
static inline void stockade_lua_set_host(lua_State *L, const char *name, stockade_lua_host host, void *context, int variant) {
    lua_pushlightuserdata(L, (void *)host);
    lua_pushlightuserdata(L, context);
    lua_pushinteger(L, variant);
    lua_pushcclosure(L, stockade_lua_trampoline, 3);
    lua_setfield(L, -2, name);
}

static inline void stockade_lua_setglobal(lua_State *L, const char *name) { lua_setfield(L, LUA_GLOBALSINDEX, name); }
static inline void stockade_lua_getglobal(lua_State *L, const char *name) { lua_getfield(L, LUA_GLOBALSINDEX, name); }
static inline void stockade_lua_pop(lua_State *L, int n) { lua_settop(L, -(n)-1); }
static inline int stockade_lua_registry(void) { return LUA_REGISTRYINDEX; }
#endif
