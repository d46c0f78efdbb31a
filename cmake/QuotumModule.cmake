# quotum_module(NAME SOURCES ... DEPS ...): one static library per module.
# The include root is src/, so headers are included as "quotum/<module>/<file>.h".
# A module sees only what it lists in DEPS; that is how the layering is enforced.
function(quotum_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(quotum_${name} STATIC ${M_SOURCES})
  target_include_directories(quotum_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(quotum_${name} PUBLIC ${M_DEPS})
endfunction()
