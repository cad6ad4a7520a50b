package dashboard

import (
	"cmp"
	"slices"
)

// Drawing metrics of the service graph (SVG user units).
const (
	NodeWidth  = 180
	NodeHeight = 56
	colGap     = 130
	rowGap     = 30
	margin     = 24
)

// Layout places the nodes in columns, left to right along the edges: a
// node's column is the longest path to it from a node nothing points at
// (edges that close a cycle are ignored), so callers stand left of the
// Services they call and Services left of their workloads. Within a column
// nodes are ordered by the mean row of their predecessors (fewer
// crossings), then by ID, and the column is centred on the tallest.
func Layout(g *Graph) {
	index := map[string]int{}
	for i, n := range g.Nodes {
		index[n.ID] = i
	}
	out := make([][]int, len(g.Nodes))
	in := make([][]int, len(g.Nodes))
	for _, e := range g.Edges {
		f, okF := index[e.From]
		t, okT := index[e.To]
		if !okF || !okT || f == t {
			continue
		}
		out[f] = append(out[f], t)
		in[t] = append(in[t], f)
	}
	// Drop edges that close a cycle (depth-first, in ID order).
	const (
		unvisited = iota
		active
		done
	)
	state := make([]int, len(g.Nodes))
	forward := make([][]int, len(g.Nodes))
	var visit func(int)
	visit = func(v int) {
		state[v] = active
		for _, w := range out[v] {
			switch state[w] {
			case unvisited:
				forward[v] = append(forward[v], w)
				visit(w)
			case done:
				forward[v] = append(forward[v], w)
			}
		}
		state[v] = done
	}
	order := make([]int, len(g.Nodes))
	for i := range order {
		order[i] = i
	}
	// Start from nodes nothing points at, so a cycle is cut where it is
	// entered rather than at whichever node sorts first.
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(len(in[a]), len(in[b])) })
	for _, v := range order {
		if state[v] == unvisited {
			visit(v)
		}
	}
	// Longest path over the forward (acyclic) edges.
	col := make([]int, len(g.Nodes))
	var topo []int
	seen := make([]bool, len(g.Nodes))
	var post func(int)
	post = func(v int) {
		seen[v] = true
		for _, w := range forward[v] {
			if !seen[w] {
				post(w)
			}
		}
		topo = append(topo, v)
	}
	for _, v := range order {
		if !seen[v] {
			post(v)
		}
	}
	for i := len(topo) - 1; i >= 0; i-- {
		v := topo[i]
		for _, w := range forward[v] {
			col[w] = max(col[w], col[v]+1)
		}
	}
	// Rows: by predecessors' mean row, column by column.
	cols := 0
	for _, c := range col {
		cols = max(cols, c+1)
	}
	members := make([][]int, cols)
	for v, c := range col {
		members[c] = append(members[c], v)
	}
	row := make([]float64, len(g.Nodes))
	tallest := 0
	for _, m := range members {
		tallest = max(tallest, len(m))
	}
	for c := range members {
		key := func(v int) float64 {
			sum, n := 0.0, 0
			for _, u := range in[v] {
				if col[u] < c {
					sum += row[u]
					n++
				}
			}
			if n == 0 {
				return -1
			}
			return sum / float64(n)
		}
		slices.SortStableFunc(members[c], func(a, b int) int {
			return cmp.Or(cmp.Compare(key(a), key(b)), cmp.Compare(g.Nodes[a].ID, g.Nodes[b].ID))
		})
		offset := float64(tallest-len(members[c])) / 2
		for r, v := range members[c] {
			row[v] = float64(r) + offset
			g.Nodes[v].Column = c
			g.Nodes[v].X = margin + float64(c)*(NodeWidth+colGap)
			g.Nodes[v].Y = margin + row[v]*(NodeHeight+rowGap)
		}
	}
	g.Width = 2*margin + float64(cols)*NodeWidth + float64(max(cols-1, 0))*colGap
	g.Height = 2*margin + float64(tallest)*NodeHeight + float64(max(tallest-1, 0))*rowGap
}
